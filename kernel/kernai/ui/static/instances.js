// Instances (llamactl): /api/v1/instances list, create (POST), edit (PUT), start, stop, restart, logs, delete.
// A refused config (400) is shown at the field its message names.
"use strict";

(() => {
  const { api, el, busy, toast } = kernai;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const FIELD_OF = { backend: "backend_type", "parameters.model": "model", idle_timeout: "idle_timeout", name: "name" };
  let editing = null; // the name of the instance in the form, when editing

  function action(label, name, call) {
    return el("button", { type: "button", "aria-label": `${label} ${name}`, onclick: (e) => busy(e.currentTarget, async () => { await call(); await refresh(); }) }, label);
  }

  function row(i) {
    const path = `/api/v1/instances/${enc(i.name)}`;
    const running = i.status === "running";
    return el("tr", { "data-instance": i.name, id: i.name },
      el("th", { scope: "row" }, i.name, el("div", { class: "muted" }, i.source === "instance" ? "instance" : i.source || ""),
        i.error ? el("div", { class: "error" }, i.error) : ""),
      el("td", { class: "optional" }, i.options.backend_type),
      el("td", {}, el("span", { class: `state ${i.status}` }, i.status)),
      el("td", { class: "optional" }, i.pid ?? ""), el("td", { class: "optional" }, i.restarts),
      el("td", {}, el("div", { class: "actions" },
        running ? action("Stop", i.name, () => api(`${path}/stop`, { method: "POST" })) : action("Start", i.name, () => api(`${path}/start`, { method: "POST" })),
        action("Restart", i.name, () => api(`${path}/restart`, { method: "POST" })),
        el("button", { type: "button", "aria-label": `Logs of ${i.name}`, onclick: () => showLogs(i.name) }, "Logs"),
        i.source === "instance" ? el("button", { type: "button", "aria-label": `Edit ${i.name}`, onclick: () => edit(i) }, "Edit") : null,
        i.source === "instance" ? action("Delete", i.name, async () => { if (confirm(`Delete ${i.name}?`)) await api(path, { method: "DELETE" }); }) : null)));
  }

  async function refresh(poll = false) {
    try { $("instances").replaceChildren(...(await api("/api/v1/instances", { poll })).map(row)); } catch (error) { toast(error.message, "error"); }
  }

  async function showLogs(name) {
    $("logs-panel").hidden = false;
    $("logs-name").textContent = name;
    $("logs").textContent = await api(`/api/v1/instances/${enc(name)}/logs?lines=200`).catch((e) => e.message);
    $("logs-close").focus();
  }

  function clearErrors() { for (const node of document.querySelectorAll(".field-error, #e-form")) node.textContent = ""; }

  function edit(instance) {
    editing = instance.name;
    const options = { ...instance.options.backend_options };
    const model = options.parameters?.model ?? options.model ?? "";
    if (options.parameters) { delete options.parameters.model; if (!Object.keys(options.parameters).length) delete options.parameters; }
    delete options.model;
    $("f-name").value = instance.name;
    $("f-name").disabled = true;
    $("f-backend").value = instance.options.backend_type;
    $("f-model").value = model;
    $("f-idle").value = instance.options.idle_timeout ?? "";
    $("f-auto-restart").checked = instance.options.auto_restart ?? true;
    $("f-on-demand").checked = instance.options.on_demand_start ?? true;
    $("f-options").value = JSON.stringify(options, null, 1);
    $("form-title").textContent = `Edit ${instance.name}`;
    $("f-submit").textContent = "Save";
    clearErrors();
    $("f-model").focus();
  }

  function reset() {
    editing = null;
    $("instance-form").reset();
    $("f-name").disabled = false;
    $("f-options").value = "{}";
    $("form-title").textContent = "Create an instance";
    $("f-submit").textContent = "Create";
    clearErrors();
  }

  /** Show a refused config at its field: llamactl's error is one message, "instance:NAME: FIELD: why". */
  function showError(message) {
    const named = message.match(/^instance:[^:]*: ([\w.]+):/)?.[1];
    const field = named && (FIELD_OF[named] || (named.split(".")[0] === "parameters" ? "model" : "backend_options"));
    (field ? $(`e-${field}`) : $("e-form")).textContent = message;
  }

  async function submit() {
    clearErrors();
    const name = $("f-name").value.trim();
    if (!/^[A-Za-z0-9._-]+$/.test(name)) { $("e-name").textContent = "Letters, digits, '.', '_' and '-' only"; return; }
    let options;
    try { options = JSON.parse($("f-options").value || "{}"); } catch (error) { $("e-backend_options").textContent = `Not JSON: ${error.message}`; return; }
    if (typeof options !== "object" || Array.isArray(options) || options === null) { $("e-backend_options").textContent = "An object, e.g. {\"context_size\": 2048}"; return; }
    if ($("f-model").value.trim()) options.model = $("f-model").value.trim();
    const body = { backend_type: $("f-backend").value, backend_options: options,
      auto_restart: $("f-auto-restart").checked, on_demand_start: $("f-on-demand").checked };
    if ($("f-idle").value !== "") body.idle_timeout = Number($("f-idle").value);
    try {
      await api(`/api/v1/instances/${enc(name)}`, { method: editing ? "PUT" : "POST", json: body });
      toast(`${name} ${editing ? "saved" : "created"}`);
      reset();
      await refresh();
    } catch (error) { showError(error.message); }
  }

  $("instance-form").addEventListener("submit", (event) => { event.preventDefault(); busy($("f-submit"), submit); });
  $("f-reset").addEventListener("click", reset);
  $("logs-close").addEventListener("click", () => { $("logs-panel").hidden = true; });
  api("/backends").then((found) => {
    $("f-backend").replaceChildren(...found.map((b) => el("option", { value: b.name }, b.name)));
  }).catch((error) => toast(error.message, "error"));
  refresh().then(() => { if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.querySelector("button")?.focus(); });
  setInterval(() => { if (!document.hidden) refresh(true); }, 5000);
})();
