// Detection: /v1/detection with the image as a data URI; boxes drawn over the picture (positioned in
// percent of its natural size, so they follow it at any width) and masks (PNG, 255 inside) tinted on a canvas.
"use strict";

(() => {
  const { api, el, busy, toast, fillModels } = kernai;
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#ff3d71", "#00b894", "#0984e3", "#fdcb6e", "#6c5ce7", "#e17055", "#00cec9", "#d63031"];

  const readAsDataUrl = (file) => new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });

  const loaded = (img) => (img.complete && img.naturalWidth ? Promise.resolve() : new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error("The browser cannot show this image"));
  }));

  async function drawMasks(detections, width, height) {
    const canvas = $("masks");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    for (const [i, d] of detections.entries()) {
      if (!d.mask) continue;
      const mask = new Image();
      mask.src = `data:image/png;base64,${d.mask}`;
      await loaded(mask);
      const layer = document.createElement("canvas");
      layer.width = width;
      layer.height = height;
      const lctx = layer.getContext("2d");
      lctx.drawImage(mask, 0, 0, width, height);
      const pixels = lctx.getImageData(0, 0, width, height);
      const [r, g, b] = COLORS[i % COLORS.length].match(/\w\w/g).map((h) => parseInt(h, 16));
      for (let p = 0; p < pixels.data.length; p += 4) {
        const inside = pixels.data[p] > 127;
        pixels.data.set([r, g, b, inside ? 110 : 0], p);
      }
      lctx.putImageData(pixels, 0, 0);
      ctx.drawImage(layer, 0, 0);
    }
  }

  function drawBoxes(detections, width, height) {
    $("boxes").replaceChildren(...detections.map((d, i) => {
      const color = COLORS[i % COLORS.length];
      const box = el("div", { class: "box", "data-label": d.class_name },
        el("span", {}, `${d.class_name} ${(d.confidence * 100).toFixed(0)}%`));
      Object.assign(box.style, {
        left: `${(d.x / width) * 100}%`, top: `${(d.y / height) * 100}%`,
        width: `${(d.width / width) * 100}%`, height: `${(d.height / height) * 100}%`, borderColor: color,
      });
      box.firstChild.style.background = color;
      return box;
    }));
  }

  async function detect() {
    const file = $("image").files[0];
    if (!file) { toast("Choose an image", "error"); return; }
    const image = await readAsDataUrl(file);
    const picture = $("picture");
    picture.src = image;
    $("stage").hidden = false;
    $("boxes").replaceChildren();
    const payload = { model: $("model").value, image };
    if ($("threshold").value !== "") payload.threshold = Number($("threshold").value);
    const [{ detections }] = await Promise.all([api("/v1/detection", { method: "POST", json: payload }), loaded(picture)]);
    const width = picture.naturalWidth, height = picture.naturalHeight;
    drawBoxes(detections, width, height);
    await drawMasks(detections, width, height);
    $("summary").textContent = `${detections.length} object${detections.length === 1 ? "" : "s"} found`;
    $("results-panel").hidden = !detections.length;
    $("results").replaceChildren(...detections.map((d) => el("tr", {},
      el("td", {}, d.class_name), el("td", {}, d.confidence.toFixed(3)),
      el("td", {}, [d.x, d.y, d.width, d.height].map((v) => v.toFixed(0)).join(", ")))));
  }

  $("detect-form").addEventListener("submit", (event) => { event.preventDefault(); busy($("detect"), detect); });
  fillModels($("model"), "detection");
})();
