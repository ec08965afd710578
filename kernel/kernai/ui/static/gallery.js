// Gallery: the model and backend galleries (/models/available, /backends/available), installs and removals
// as jobs whose progress is polled (/models/jobs/{uuid}, /backends/jobs/{uuid}), cancel, backend upgrades.
"use strict";

(() => {
  const { api, el, busy, toast } = kernai;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  let models = [], backends = [], upgrades = {};
  const jobs = new Map(); // element id -> job uuid being watched
  const outcomes = new Map(); // element id -> the last job's outcome, shown in its row

  const matches = (query, ...fields) => !query || fields.join(" ").toLowerCase().includes(query);
  const tags = (list) => (list || []).map((t) => el("span", { class: "tag" }, t));

  /** Poll a job until it ends; show its progress in ``cell``. */
  async function watch(kind, uuid, cell, id) {
    jobs.set(id, uuid);
    const bar = el("progress", { max: 100, value: 0, "aria-label": `Progress of ${id}` });
    const text = el("div", { class: "muted job-message" }, "queued");
    const cancel = el("button", { type: "button", onclick: () => busy(cancel, () => api(`/${kind}/jobs/${uuid}/cancel`, { method: "POST" })) }, "Cancel");
    cell.replaceChildren(bar, text, el("div", { class: "actions" }, cancel));
    for (;;) {
      let job;
      try { job = await api(`/${kind}/jobs/${uuid}`, { poll: true }); } catch (error) { text.textContent = error.message; break; }
      bar.value = job.progress;
      const size = job.file_size_bytes ? ` · ${job.downloaded_size} of ${job.file_size}` : "";
      text.textContent = `${job.state} ${job.progress.toFixed(0)} %${size}${job.message ? ` · ${job.message}` : ""}`;
      cancel.disabled = !job.cancellable;
      if (job.processed) {
        text.className = job.state === "done" ? "job-message" : "job-message error";
        if (job.error) text.textContent = `${job.state}: ${job.error}`;
        (job.state === "done" ? toast : (m) => toast(m, "error"))(`${job.gallery_element_name}: ${job.op} ${job.state}`);
        outcomes.set(id, { text: text.textContent, ok: job.state === "done" });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    jobs.delete(id);
    cancel.remove();
    await load();
  }

  function outcome(id) {
    const last = outcomes.get(id);
    return last ? el("div", { class: last.ok ? "muted job-message" : "error job-message" }, last.text) : null;
  }

  async function start(kind, button, call, id) {
    const ref = await busy(button, call);
    if (ref) watch(kind, ref.uuid, button.closest("td"), id);
  }

  function modelRow(m) {
    const cell = el("td", { class: "install" });
    if (!jobs.has(m.id)) {
      cell.append(m.installed
        ? el("button", { type: "button", class: "danger", "aria-label": `Delete ${m.name}`,
          onclick: (e) => start("models", e.currentTarget, () => api(`/models/delete/${enc(m.name)}`, { method: "POST" }), m.id) }, "Delete")
        : el("button", { type: "button", class: "primary", "aria-label": `Install ${m.name}`,
          onclick: (e) => start("models", e.currentTarget, () => api("/models/apply", { method: "POST", json: { id: m.id } }), m.id) }, "Install"));
    }
    cell.append(outcome(m.id) || "");
    return el("tr", { "data-entry": m.id },
      el("th", { scope: "row" }, m.name, m.installed ? el("span", { class: "state done" }, " installed") : "",
        el("div", { class: "muted" }, m.description || ""), tags(m.tags), el("div", { class: "muted" }, `gallery ${m.gallery.name}`)),
      el("td", { class: "optional" }, m.backend || ""), el("td", { class: "optional" }, m.size || ""), cell);
  }

  function backendRow(b) {
    const cell = el("td", { class: "install" });
    const upgrade = upgrades[b.name];
    if (!jobs.has(b.id)) {
      if (!b.installed) {
        cell.append(el("button", { type: "button", class: "primary", "aria-label": `Install ${b.name}`,
          onclick: (e) => start("backends", e.currentTarget, () => api("/backends/apply", { method: "POST", json: { id: b.id } }), b.id) }, "Install"));
      } else {
        if (upgrade) cell.append(el("button", { type: "button", class: "primary", "aria-label": `Upgrade ${b.name}`,
          onclick: (e) => start("backends", e.currentTarget, () => api(`/backends/upgrade/${enc(b.name)}`, { method: "POST" }), b.id) }, "Upgrade"));
        cell.append(el("button", { type: "button", class: "danger", "aria-label": `Remove ${b.name}`,
          onclick: (e) => start("backends", e.currentTarget, () => api(`/backends/delete/${enc(b.name)}`, { method: "POST" }), b.id) }, "Remove"));
      }
    }
    cell.append(outcome(b.id) || "");
    const version = b.installed ? `${b.installed_version || "installed"}${upgrade ? ` → ${upgrade.available_version}` : ""}` : (b.version || "");
    return el("tr", { "data-entry": b.id },
      el("th", { scope: "row" }, b.name, el("div", { class: "muted" }, b.description || ""), tags(b.tags)),
      el("td", { class: "optional" }, tags(b.capabilities)), el("td", {}, version), cell);
  }

  function render() {
    const query = $("search").value.trim().toLowerCase();
    const keepRow = (id, make) => (jobs.has(id) ? document.querySelector(`tr[data-entry="${CSS.escape(id)}"]`) || make() : make());
    $("models").replaceChildren(...models.filter((m) => matches(query, m.name, m.description, m.backend, (m.tags || []).join(" ")))
      .map((m) => keepRow(m.id, () => modelRow(m))));
    $("backends").replaceChildren(...backends.filter((b) => matches(query, b.name, b.description, (b.tags || []).join(" "), (b.capabilities || []).join(" ")))
      .map((b) => keepRow(b.id, () => backendRow(b))));
  }

  async function load() {
    const [m, b, u] = await Promise.all([
      api("/models/available").catch((e) => { toast(e.message, "error"); return []; }),
      api("/backends/available").catch((e) => { toast(e.message, "error"); return []; }),
      api("/backends/upgrades").catch(() => []),
    ]);
    models = m;
    backends = b;
    upgrades = Object.fromEntries((Array.isArray(u) ? u : Object.values(u || {})).map((x) => [x.name, x]));
    render();
  }

  $("search").addEventListener("input", render);
  load();
})();
