// Chat playground: streams /v1/chat/completions (server-sent events), renders markdown (marked, then
// DOMPurify), keeps conversations in localStorage, shows time to first token and tokens per second.
"use strict";

(() => {
  const { el, request, toast, fillModels } = kernai;
  const $ = (id) => document.getElementById(id);
  const STORE = "kernai.chats";
  const controls = {
    model: $("model"), system: $("system"), temperature: $("temperature"), topP: $("top-p"),
    maxTokens: $("max-tokens"), prompt: $("prompt"), send: $("send"), stop: $("stop"),
  };
  let chats = JSON.parse(localStorage.getItem(STORE) || "[]");
  let current = null;
  let running = null; // the AbortController of the answer being streamed

  const save = () => localStorage.setItem(STORE, JSON.stringify(chats.slice(0, 50)));
  const markdown = (text) => DOMPurify.sanitize(marked.parse(text, { gfm: true, breaks: true }));

  function newChat() {
    current = { id: crypto.randomUUID(), title: "New chat", messages: [], updated: Date.now() };
    renderMessages();
    renderList();
    controls.prompt.focus();
  }

  function openChat(id) {
    current = chats.find((c) => c.id === id) || current;
    if (current.system !== undefined) controls.system.value = current.system;
    renderMessages();
    renderList();
  }

  function deleteChat(id) {
    chats = chats.filter((c) => c.id !== id);
    save();
    if (current && current.id === id) newChat(); else renderList();
  }

  function renderList() {
    $("conversations").replaceChildren(...chats.map((chat) => el("li", { class: chat.id === current?.id ? "current" : "" },
      el("button", { type: "button", class: "open", title: chat.title, onclick: () => openChat(chat.id) }, chat.title),
      el("button", { type: "button", class: "danger", "aria-label": `Delete ${chat.title}`, onclick: () => deleteChat(chat.id) }, "×"),
    )));
  }

  function stats(s) {
    if (!s) return "";
    const parts = [];
    if (s.ttft !== undefined) parts.push(`TTFT ${Math.round(s.ttft)} ms`);
    if (s.tps !== undefined) parts.push(`${s.tps.toFixed(1)} tok/s`);
    if (s.tokens !== undefined) parts.push(`${s.tokens} tokens`);
    if (s.stopped) parts.push("stopped");
    return parts.join(" · ");
  }

  function messageNode(message) {
    const body = el("div", { class: "body" });
    if (message.role === "assistant") body.innerHTML = markdown(message.content);
    else body.textContent = message.content;
    return el("li", { class: `message ${message.role}` },
      el("div", { class: "role" }, message.role === "user" ? "You" : message.model || "Assistant"),
      body, el("div", { class: "stats" }, stats(message.stats)));
  }

  function renderMessages() {
    $("messages").replaceChildren(...current.messages.map(messageNode));
  }

  /** Yield the JSON of each server-sent event of a streamed response. */
  async function* events(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          yield JSON.parse(data);
        }
      }
    }
  }

  async function send(text) {
    const model = controls.model.value;
    if (!model) { toast("Choose a model first", "error"); return; }
    const history = current.messages.map(({ role, content }) => ({ role, content }));
    const system = controls.system.value.trim();
    current.system = controls.system.value;
    const user = { role: "user", content: text };
    const answer = { role: "assistant", content: "", model, stats: {} };
    current.messages.push(user, answer);
    if (current.title === "New chat") current.title = text.slice(0, 40);
    if (!chats.includes(current)) chats.unshift(current);
    $("messages").append(messageNode(user));
    const node = messageNode(answer);
    node.setAttribute("aria-busy", "true");
    $("messages").append(node);
    const body = node.querySelector(".body");
    const statsNode = node.querySelector(".stats");
    const payload = {
      model, stream: true, stream_options: { include_usage: true },
      messages: [...(system ? [{ role: "system", content: system }] : []), ...history, user],
      temperature: Number(controls.temperature.value), top_p: Number(controls.topP.value),
      max_tokens: Number(controls.maxTokens.value),
    };
    running = new AbortController();
    controls.send.disabled = true;
    controls.stop.disabled = false;
    const started = performance.now();
    let first = null, chunks = 0, usage = null, frame = 0;
    const paint = () => { frame = 0; body.innerHTML = markdown(answer.content); node.scrollIntoView({ block: "end" }); };
    try {
      const response = await request("/v1/chat/completions", { method: "POST", json: payload, signal: running.signal });
      for await (const chunk of events(response)) {
        if (chunk.error) throw new Error(chunk.error.message || "The stream ended with an error");
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (!delta) continue;
        if (first === null) first = performance.now();
        chunks += 1;
        answer.content += delta;
        if (!frame) frame = requestAnimationFrame(paint);
      }
    } catch (error) {
      if (error.name === "AbortError") answer.stats.stopped = true;
      else { toast(error.message, "error"); answer.stats.error = error.message; }
    } finally {
      const ended = performance.now();
      const tokens = usage?.completion_tokens ?? chunks;
      if (first !== null) {
        answer.stats.ttft = first - started;
        answer.stats.tps = tokens > 1 && ended > first ? (tokens - 1) / ((ended - first) / 1000) : 0;
        answer.stats.tokens = tokens;
      }
      paint();
      statsNode.textContent = stats(answer.stats) || answer.stats.error || "";
      node.removeAttribute("aria-busy");
      current.updated = Date.now();
      save();
      renderList();
      running = null;
      controls.send.disabled = false;
      controls.stop.disabled = true;
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = controls.prompt.value.trim();
    if (!text || running) return;
    controls.prompt.value = "";
    send(text);
  });
  controls.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  controls.stop.addEventListener("click", () => running?.abort());
  $("new-chat").addEventListener("click", newChat);

  fillModels(controls.model, "chat");
  if (chats.length) openChat(chats[0].id); else newChat();
})();
