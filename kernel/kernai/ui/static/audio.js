// Audio: speech (/v1/audio/speech, voices from /v1/audio/voices), transcription (/v1/audio/transcriptions,
// verbose_json segments) of a file or a recording, and voice activity (/vad) drawn over the waveform.
"use strict";

(() => {
  const { api, request, el, busy, toast, fillModels, seconds } = kernai;
  const $ = (id) => document.getElementById(id);
  let audioUrl = null;
  let recorded = null; // a Blob from the microphone
  let recorder = null;

  async function loadVoices() {
    const model = $("tts-model").value;
    const select = $("tts-voice");
    select.replaceChildren();
    if (!model) return;
    try {
      const { data } = await api(`/v1/audio/voices?model=${encodeURIComponent(model)}`);
      const voices = data[0]?.voices || [];
      select.replaceChildren(...voices.map((v) => el("option", { value: v.id }, v.language ? `${v.name} (${v.language})` : v.name)));
      if (data[0]?.default) select.value = data[0].default;
    } catch (error) { toast(error.message, "error"); }
  }

  $("tts").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("speak"), async () => {
      const payload = { model: $("tts-model").value, input: $("tts-text").value, response_format: "wav" };
      if ($("tts-voice").value) payload.voice = $("tts-voice").value;
      const response = await request("/v1/audio/speech", { method: "POST", json: payload });
      const blob = await response.blob();
      if (audioUrl) URL.revokeObjectURL(audioUrl);
      audioUrl = URL.createObjectURL(blob);
      $("tts-audio").src = audioUrl;
      $("tts-download").href = audioUrl;
      $("tts-download").hidden = false;
      $("tts-audio").play().catch(() => { /* autoplay may be refused: the player is there */ });
    });
  });

  function drawWave(samples, duration, segments) {
    const canvas = $("wave");
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    const style = getComputedStyle(document.body);
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "rgba(80, 180, 120, 0.35)";
    for (const s of segments) ctx.fillRect((s.start / duration) * width, 0, ((s.end - s.start) / duration) * width, height);
    ctx.strokeStyle = style.getPropertyValue("--accent") || "#36c";
    ctx.beginPath();
    const step = Math.max(1, Math.floor(samples.length / width));
    for (let x = 0; x < width; x += 1) {
      let peak = 0;
      for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i += 1) peak = Math.max(peak, Math.abs(samples[i]));
      ctx.moveTo(x, height / 2 - peak * height / 2);
      ctx.lineTo(x, height / 2 + peak * height / 2);
    }
    ctx.stroke();
  }

  async function waveform(blob) {
    try {
      const context = new AudioContext();
      const buffer = await context.decodeAudioData(await blob.arrayBuffer());
      context.close();
      return { samples: buffer.getChannelData(0), duration: buffer.duration };
    } catch { return null; } // a format the browser cannot decode: no waveform
  }

  async function voiceActivity(blob, name) {
    const model = $("vad-model").value;
    if (!model) return [];
    const form = new FormData();
    form.append("file", blob, name);
    form.append("model", model);
    try {
      const { segments } = await api("/vad", { method: "POST", form });
      return segments;
    } catch (error) { toast(`Voice activity: ${error.message}`, "error"); return []; }
  }

  async function transcribe() {
    const file = $("stt-file").files[0];
    const blob = file || recorded;
    if (!blob) { toast("Choose an audio file or record one", "error"); return; }
    const name = file ? file.name : "recording.webm";
    const form = new FormData();
    form.append("file", blob, name);
    form.append("model", $("stt-model").value);
    form.append("response_format", "verbose_json");
    form.append("timestamp_granularities[]", "segment");
    const [result, wave, speech] = await Promise.all([
      api("/v1/audio/transcriptions", { method: "POST", form }), waveform(blob), voiceActivity(blob, name),
    ]);
    $("stt-text").textContent = result.text;
    $("segments").replaceChildren(...(result.segments || []).map((s) => el("li", {},
      el("code", {}, `${seconds(s.start)} – ${seconds(s.end)}`), " ", s.text.trim())));
    if (wave) drawWave(wave.samples, wave.duration, speech);
    $("vad-summary").textContent = $("vad-model").value
      ? `${speech.length} speech segment${speech.length === 1 ? "" : "s"}: ${speech.map((s) => `${s.start.toFixed(2)}–${s.end.toFixed(2)} s`).join(", ")}`
      : "No voice activity model is configured.";
  }

  $("stt").addEventListener("submit", (event) => { event.preventDefault(); busy($("transcribe"), transcribe); });
  $("stt-file").addEventListener("change", () => { recorded = null; });

  async function record() {
    if (recorder) { recorder.stop(); return; }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (error) {
      toast(`The microphone is not available: ${error.message}`, "error");
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (event) => chunks.push(event.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorded = new Blob(chunks, { type: recorder.mimeType });
      recorder = null;
      $("stt-file").value = "";
      $("record").textContent = "Record";
      busy($("transcribe"), transcribe);
    };
    recorder.start();
    $("record").textContent = "Stop recording";
  }
  if (window.MediaRecorder && navigator.mediaDevices) $("record").addEventListener("click", record);
  else $("record").hidden = true;

  $("tts-model").addEventListener("change", loadVoices);
  fillModels($("tts-model"), "speech").then(loadVoices);
  fillModels($("stt-model"), "transcription");
  fillModels($("vad-model"), "vad");
})();
