// Traces (/api/traces) and charts of the server's own Prometheus metrics (/metrics), sampled every 3 s:
// requests per second, generated tokens per second, mean latency over the last interval.
"use strict";

(() => {
  const { api, el, busy, toast } = kernai;
  const $ = (id) => document.getElementById(id);
  const SAMPLES = 40;
  const series = { requests: [], tokens: [], latency: [] };
  let last = null;

  /** The sum of every sample of a metric family in Prometheus text (``name`` exactly, any labels). */
  function total(text, name) {
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || !line.startsWith(name)) continue;
      const rest = line.slice(name.length);
      if (rest[0] !== " " && rest[0] !== "{") continue;
      sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
    }
    return sum;
  }

  function draw(name, values, label) {
    const svg = $(`c-${name}`);
    const max = Math.max(...values, 1e-9);
    const step = 300 / Math.max(values.length - 1, 1);
    const points = values.map((v, i) => `${i * step},${100 - (v / max) * 95}`).join(" ");
    svg.replaceChildren(document.createElementNS("http://www.w3.org/2000/svg", "polyline"));
    svg.firstChild.setAttribute("points", points);
    $(`v-${name}`).textContent = values.length ? label(values[values.length - 1]) : "—";
  }

  async function sample() {
    let text;
    try { text = await api("/metrics"); } catch (error) { toast(error.message, "error"); return; }
    const now = {
      time: performance.now() / 1000,
      requests: total(text, "kernai_http_requests_total"),
      tokens: total(text, "kernai_completion_tokens_total"),
      latencySum: total(text, "kernai_http_request_duration_seconds_sum"),
      latencyCount: total(text, "kernai_http_request_duration_seconds_count"),
    };
    if (last) {
      const dt = now.time - last.time;
      const count = now.latencyCount - last.latencyCount;
      const push = (key, value) => { series[key].push(value); if (series[key].length > SAMPLES) series[key].shift(); };
      push("requests", (now.requests - last.requests) / dt);
      push("tokens", (now.tokens - last.tokens) / dt);
      push("latency", count > 0 ? ((now.latencySum - last.latencySum) / count) * 1000 : 0);
      draw("requests", series.requests, (v) => `${v.toFixed(2)} /s`);
      draw("tokens", series.tokens, (v) => `${v.toFixed(1)} tok/s`);
      draw("latency", series.latency, (v) => `${v.toFixed(1)} ms`);
    }
    last = now;
  }

  async function traces() {
    try {
      const list = await api("/api/traces");
      $("traces").replaceChildren(...list.slice(-100).reverse().map((t) => el("tr", {},
        el("td", {}, new Date(t.time * 1000).toLocaleTimeString()),
        el("td", {}, el("code", {}, `${t.method} ${t.path}`)),
        el("td", {}, el("span", { class: `state ${t.status >= 400 ? "error" : "done"}` }, t.status)),
        el("td", { class: "optional" }, t.model || ""), el("td", { class: "optional" }, `${t.duration_ms} ms`))));
    } catch (error) { toast(error.message, "error"); }
  }

  $("clear").addEventListener("click", (e) => busy(e.currentTarget, async () => { await api("/api/traces/clear", { method: "POST" }); await traces(); }));
  sample();
  traces();
  setInterval(() => { if (!document.hidden) { sample(); traces(); } }, 3000);
})();
