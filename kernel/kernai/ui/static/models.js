// Models: /api/v1/instances (state, flags, config), /v1/models (capabilities), /backend/monitor (memory,
// CPU); actions through LocalLab's /models/load, LocalAI's /backend/shutdown and /api/models/*; the config
// editor through /api/models/config-json/{name}; live log over the /ws/backend-logs WebSocket.
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
        el("button", { type: "button", "aria-label": `Config of ${name}`, onclick: () => openConfig(instance) }, "Config"),
      )));
  }

  async function refresh(poll = false) {
    let instances, cards;
    try {
      [instances, cards] = await Promise.all([api("/api/v1/instances", { poll }), api("/v1/models", { poll })]);
    } catch (error) { toast(error.message, "error"); return; }
    const byName = Object.fromEntries(cards.data.map((c) => [c.id, c]));
    const monitors = await Promise.all(instances.map((i) => (i.status === "running"
      ? api(`/backend/monitor?model=${enc(i.name)}`, { poll }).catch(() => null) : null)));
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

  // --- config: PATCH /api/models/config-json/{name}, its fields from /api/models/config-metadata -------
  let editing = null; // {name, initial: {path: text}}
  let metadata = null;

  /** The model's config as dotted paths, from its llamactl instance options. */
  function currentConfig(options) {
    const current = {};
    for (const [key, value] of Object.entries(options.backend_options || {})) {
      if (key === "parameters") for (const [p, v] of Object.entries(value)) current[`parameters.${p}`] = v;
      else current[key] = value;
    }
    for (const key of ["description", "pinned", "disabled", "on_demand_start", "auto_restart", "max_restarts", "restart_delay", "parallel", "environment"]) {
      if (options[key] !== undefined && options[key] !== null) current[key] = options[key];
    }
    if (options.idle_timeout !== undefined && options.idle_timeout !== null) current.idle_timeout = options.idle_timeout * 60;
    return current;
  }

  const asText = (value, type) => (value === undefined || value === null ? ""
    : (type === "object" || type === "array") ? JSON.stringify(value) : String(value));

  function input(field, value) {
    const id = `cfg-${field.path}`;
    const attrs = { id, "data-path": field.path, "data-type": field.type };
    let control;
    if (field.type === "boolean") {
      control = el("select", attrs, el("option", { value: "" }, `default (${field.default ?? "none"})`),
        el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
    } else if (field.choices) {
      control = el("select", attrs, el("option", { value: "" }, `default (${field.default ?? "none"})`),
        ...field.choices.map((c) => el("option", { value: String(c) }, String(c))));
    } else {
      const kind = field.type === "integer" || field.type === "number" ? "number" : "text";
      control = el("input", { ...attrs, type: kind, step: field.type === "number" ? "any" : undefined,
        placeholder: field.default !== undefined && field.default !== null ? asText(field.default, field.type) : "" });
    }
    control.value = value;
    return el("label", { title: field.description }, field.path, control,
      el("span", { class: "field-error", "data-error-for": field.path }));
  }

  async function openConfig(instance) {
    metadata = metadata || (await api("/api/models/config-metadata?section=all").catch((e) => { toast(e.message, "error"); return null; }));
    if (!metadata) return;
    const backend = instance.options.backend_type;
    const current = currentConfig(instance.options);
    const fields = metadata.fields.filter((f) => !["name", "backend"].includes(f.path) && (!f.backend || f.backend === backend));
    editing = { name: instance.name, initial: Object.fromEntries(fields.map((f) => [f.path, asText(current[f.path], f.type)])) };
    const sections = [...new Set(fields.map((f) => f.section))];
    $("config-fields").replaceChildren(...sections.map((section) => el("fieldset", {}, el("legend", {}, section),
      el("div", { class: "row" }, fields.filter((f) => f.section === section).map((f) => input(f, editing.initial[f.path]))))));
    $("config-title").textContent = `Config of ${instance.name}`;
    $("config-error").textContent = "";
    $("config-panel").hidden = false;
    $("config-fields").querySelector("input, select")?.focus();
  }

  /** The changed fields as a nested patch (an emptied field removes its key: null). */
  function configPatch() {
    const patch = {};
    for (const control of $("config-fields").querySelectorAll("[data-path]")) {
      const path = control.dataset.path;
      const text = control.value.trim();
      if (text === editing.initial[path]) continue;
      let value = null;
      if (text !== "") {
        const type = control.dataset.type;
        if (type === "integer" || type === "number") value = Number(text);
        else if (type === "boolean") value = text === "true";
        else if (type === "object" || type === "array") {
          try { value = JSON.parse(text); } catch (error) { throw Object.assign(new Error(`Not JSON: ${error.message}`), { param: path }); }
        } else value = text;
      }
      const parts = path.split(".");
      let node = patch;
      for (const part of parts.slice(0, -1)) node = node[part] = node[part] || {};
      node[parts[parts.length - 1]] = value;
    }
    return patch;
  }

  function showConfigError(message, param) {
    const fields = [...$("config-fields").querySelectorAll("[data-error-for]")];
    const at = param && fields.filter((f) => param === f.dataset.errorFor || param.startsWith(`${f.dataset.errorFor}.`))
      .sort((a, b) => b.dataset.errorFor.length - a.dataset.errorFor.length)[0];
    (at || $("config-error")).textContent = message;
    (at?.previousElementSibling || $("config-error")).scrollIntoView?.({ block: "center" });
  }

  $("config-form").addEventListener("submit", (event) => {
    event.preventDefault();
    for (const node of document.querySelectorAll("#config-panel .field-error, #config-error")) node.textContent = "";
    busy($("config-save"), async () => {
      let patch;
      try { patch = configPatch(); } catch (error) { showConfigError(error.message, error.param); return; }
      if (!Object.keys(patch).length) { toast("Nothing changed"); return; }
      try {
        const result = await api(`/api/models/config-json/${enc(editing.name)}`, { method: "PATCH", json: patch });
        toast(`${editing.name}: config saved${result.restarted ? ", restarted" : ""}`);
        $("config-panel").hidden = true;
        await refresh();
      } catch (error) { showConfigError(error.message, error.body?.error?.param); }
    });
  });
  $("config-close").addEventListener("click", () => { $("config-panel").hidden = true; });

  $("log-close").addEventListener("click", () => { socket?.close(); socket = null; $("log-panel").hidden = true; });
  refresh();
  setInterval(() => { if (!document.hidden && !acting) refresh(true); }, 4000);
})();
