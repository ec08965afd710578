// API keys: /api/v1/auth/keys list, create (the secret shown once, with a copy button), revoke;
// /api/v1/auth/settings shows which kinds of route need a key.
"use strict";

(() => {
  const { api, el, busy, toast } = kernai;
  const $ = (id) => document.getElementById(id);
  const date = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : "—");

  function row(k) {
    return el("tr", { "data-key": k.name },
      el("th", { scope: "row" }, k.name), el("td", {}, k.kind), el("td", { class: "optional" }, el("code", {}, `${k.key_prefix}…`)),
      el("td", { class: "optional" }, k.permission_mode === "allow_all" ? "all" : k.instance_names.join(", ")),
      el("td", { class: "optional" }, date(k.last_used_at)), el("td", { class: "optional" }, date(k.expires_at)),
      el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}`, onclick: (e) => busy(e.currentTarget, async () => {
        if (!confirm(`Revoke the key ${k.name}? Clients using it are refused from now on.`)) return;
        await api(`/api/v1/auth/keys/${k.id}`, { method: "DELETE" });
        toast(`${k.name} revoked`);
        await refresh();
      }) }, "Revoke")));
  }

  async function refresh() {
    try {
      $("keys").replaceChildren(...(await api("/api/v1/auth/keys")).map(row));
      const s = await api("/api/v1/auth/settings");
      $("auth-settings").textContent = `Management routes: ${s.require_management_auth ? "a management key" : "no key"}. `
        + `Inference routes: ${s.require_inference_auth ? "any key" : "no key"}.`;
    } catch (error) { toast(error.message, "error"); }
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("k-create"), async () => {
      const models = $("k-models").value.split(",").map((m) => m.trim()).filter(Boolean);
      const body = { name: $("k-name").value.trim(), kind: $("k-kind").value };
      if (models.length) Object.assign(body, { permission_mode: "per_instance", instance_names: models });
      if ($("k-expires").value) body.expires_at = Math.floor(new Date(`${$("k-expires").value}T23:59:59`).getTime() / 1000);
      const created = await api("/api/v1/auth/keys", { method: "POST", json: body });
      $("new-key-value").textContent = created.key;
      $("new-key").hidden = false;
      $("copy-key").focus();
      $("key-form").reset();
      await refresh();
    });
  });

  $("copy-key").addEventListener("click", async () => {
    const value = $("new-key-value").textContent;
    try { await navigator.clipboard.writeText(value); toast("Copied"); } catch {
      getSelection().selectAllChildren($("new-key-value")); // no clipboard access (plain http): select it
      toast("Selected: copy it with Ctrl+C");
    }
  });
  refresh();
})();
