// kernai web UI: what every page shares. Calls the server's own JSON APIs with the session cookie and,
// on state-changing requests, the session's CSRF token (kernai.http.session).
"use strict";

const kernai = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  function errorMessage(body, status) {
    if (body && typeof body === "object") {
      const error = body.error;
      if (error && typeof error === "object" && error.message) return error.message;
      if (typeof error === "string") return error;
      if (typeof body.detail === "string") return body.detail;
      if (typeof body.message === "string") return body.message;
    }
    return `HTTP ${status}`;
  }

  /** fetch() on this server: JSON or FormData bodies, the CSRF token, errors thrown with the API's message.
   * ``poll``: a read that refreshes what the page shows, which the server leaves out of /api/traces. */
  async function request(path, { method = "GET", json, form, signal, poll = false } = {}) {
    const headers = {};
    const init = { method, headers, signal, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
    if (poll) headers["X-Kernai-UI-Poll"] = "1";
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form) {
      init.body = form;
    }
    const response = await fetch(path, init);
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch { /* not JSON */ }
      const error = new Error(errorMessage(body, response.status));
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }

  /** el("button", {class: "primary", onclick: f}, "Send"): an element with attributes and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function toast(message, kind = "info") {
    const box = document.getElementById("toast");
    const item = el("div", { class: kind }, message);
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
  }

  /** Run an async action from a button: disabled while it runs, errors shown as a toast. */
  async function busy(button, action) {
    if (button) button.disabled = true;
    try { return await action(); } catch (error) { toast(error.message, "error"); return undefined; }
    finally { if (button) button.disabled = false; }
  }

  /** The configured models (/v1/models), those with ``capability`` when given. */
  async function models(capability) {
    const { data } = await api("/v1/models");
    return capability ? data.filter((m) => m.capabilities.includes(capability)) : data;
  }

  /** Fill a <select> with the models of a capability, keeping the last choice of this page. */
  async function fillModels(select, capability) {
    const remembered = localStorage.getItem(`kernai.model.${capability}`);
    let found = [];
    try { found = await models(capability); } catch (error) { toast(error.message, "error"); }
    select.replaceChildren(...found.map((m) => el("option", { value: m.id }, `${m.id} (${m.status.state})`)));
    if (!found.length) select.append(el("option", { value: "" }, `no ${capability} model configured`));
    if (remembered && found.some((m) => m.id === remembered)) select.value = remembered;
    select.addEventListener("change", () => localStorage.setItem(`kernai.model.${capability}`, select.value));
    return found;
  }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function seconds(s) {
    const m = Math.floor(s / 60);
    return `${m}:${(s - m * 60).toFixed(2).padStart(5, "0")}`;
  }

  return { request, api, el, toast, busy, models, fillModels, bytes, seconds };
})();
