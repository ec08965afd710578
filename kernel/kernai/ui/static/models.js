// Models: /api/v1/instances (state, flags), /v1/models (capabilities), /backend/monitor (memory, CPU);
// actions through LocalLab's /models/load, LocalAI's /backend/shutdown and /api/models/*; live log over
// the /ws/backend-logs WebSocket.
"use strict";

(() => {
  const { api, el, busy, bytes, toast } = kernai;
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let acting = false;

  const enc = encodeURIComponent;
  const ACTIONS = {
    load: (m) => api("/models/load", { method: "POST", json: { model_id: m } }),
    unload: (m) => api("/backend/shutdown", { method: "POST", json: { model: m } }),
    enable: (m) => api(`/api/models/${enc(m)}/enable`, { method: "PUT" }),
    disable: (m) => api(`/api/models/${enc(m)}/disable`, { method: "PUT" }),
    pin: (m) => api(`/api/models/toggle-pinned/${enc(m)}/pin`, { method: "PUT" }),
    unpin: (m) => api(`/api/models/toggle-pinned/${enc(m)}/unpin`, { method: "PUT" }),
  };

  function actionButton(label, action, model, extra = {}) {
    return el("button", {
      type: "button", "data-action": action, "aria-label": `${label} ${model}`, ...extra,
      onclick: (event) => run(event.currentTarget, action, model),
    }, label);
  }

  async function run(button, action, model) {
    acting = true;
    const done = await busy(button, () => ACTIONS[action](model));
    acting = false;
    if (done !== undefined) toast(`${model}: ${action} done`);
    await refresh();
  }

  function row(instance, card, monitor) {
    const name = instance.name;
    const options = instance.options || {};
    const running = instance.status === "running";
    const memory = monitor?.memory_info?.rss;
    const flags = [options.pinned && el("span", { class: "tag" }, "pinned"), options.disabled && el("span", { class: "tag" }, "disabled")];
    return el("tr", { "data-model": name },
      el("th", { scope: "row" }, name, el("div", { class: "muted" }, instance.error ? el("span", { class: "error" }, instance.error) : "")),
      el("td", {}, options.backend_type || card?.owned_by || ""),
      el("td", { class: "optional" }, (card?.capabilities || []).map((c) => el("span", { class: "tag" }, c))),
      el("td", {}, el("span", { class: `state ${instance.status}` }, instance.status), " ", flags),
      el("td", { class: "optional" }, memory ? bytes(memory) : ""),
      el("td", { class: "optional" }, monitor?.cpu_percent !== undefined ? `${monitor.cpu_percent.toFixed(0)} %` : ""),
      el("td", {}, el("div", { class: "actions" },
        running ? actionButton("Unload", "unload", name) : actionButton("Load", "load", name, { disabled: options.disabled }),
        options.disabled ? actionButton("Enable", "enable", name) : actionButton("Disable", "disable", name),
        options.pinned ? actionButton("Unpin", "unpin", name) : actionButton("Pin", "pin", name),
        el("button", { type: "button", "aria-label": `Log of ${name}`, onclick: () => openLog(name) }, "Log"),
        instance.source === "instance" ? el("a", { href: `/ui/instances#${enc(name)}` }, "Edit") : null,
      )));
  }

  async function refresh() {
    let instances, cards;
    try {
      [instances, cards] = await Promise.all([api("/api/v1/instances"), api("/v1/models")]);
    } catch (error) { toast(error.message, "error"); return; }
    const byName = Object.fromEntries(cards.data.map((c) => [c.id, c]));
    const monitors = await Promise.all(instances.map((i) => (i.status === "running"
      ? api(`/backend/monitor?model=${enc(i.name)}`).catch(() => null) : null)));
    if (acting) return; // an action's own refresh follows
    const focused = document.activeElement?.closest("tr")?.dataset.model;
    const focusedAction = document.activeElement?.dataset?.action;
    $("models").replaceChildren(...instances.map((instance, i) => row(instance, byName[instance.name], monitors[i])));
    if (focused) { // keep keyboard focus on the row the user was on
      const again = $("models").querySelector(`tr[data-model="${CSS.escape(focused)}"] button`);
      const same = focusedAction && $("models").querySelector(`tr[data-model="${CSS.escape(focused)}"] [data-action="${focusedAction}"]`);
      (same || again)?.focus();
    }
  }

  function openLog(model) {
    socket?.close();
    $("log-panel").hidden = false;
    $("log-model").textContent = model;
    $("log").textContent = "";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/backend-logs/${enc(model)}?tail=200`);
    socket.onmessage = (event) => {
      const log = $("log");
      log.append(event.data.endsWith("\n") ? event.data : `${event.data}\n`);
      log.scrollTop = log.scrollHeight;
    };
    socket.onclose = (event) => { if (event.code === 1008) toast(`Log of ${model}: ${event.reason}`, "error"); };
    $("log-close").focus();
  }

  $("log-close").addEventListener("click", () => { socket?.close(); socket = null; $("log-panel").hidden = true; });
  refresh();
  setInterval(() => { if (!document.hidden && !acting) refresh(); }, 4000);
})();
