// The playground: chat with the bot as one of the emulator's personas.
// Everything the bot sends is rendered from text + entities with DOM nodes and
// text nodes only, never innerHTML, so a message can never inject markup.
"use strict";

(() => {
  const CITIES = [
    ["Brussels", 50.8467, 4.3525],
    ["Paris", 48.8566, 2.3522],
    ["Lyon", 45.764, 4.8357],
    ["Montréal", 45.5019, -73.5674],
    ["London", 51.5072, -0.1276],
    ["Geneva", 46.2044, 6.1432],
  ];
  const POLL_SECONDS = 25;
  const ACTIONS = {
    typing: "typing…",
    upload_photo: "sending a photo…",
    upload_document: "sending a file…",
    find_location: "choosing a location…",
    record_voice: "recording a voice message…",
    upload_voice: "sending a voice message…",
    record_video: "recording a video…",
    upload_video: "sending a video…",
    choose_sticker: "choosing a sticker…",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    personas: [],
    chatId: null,
    language: "en",
    revision: 0,
    generation: 0,
    abort: null,
    messages: new Map(),
    answersSeen: new Set(),
    keyboard: null,
    keyboardHidden: false,
    blocked: false,
    forceReplyTo: null,
    actionTimer: null,
    botLabel: "",
    pinnedToBottom: true,
  };

  // --- small helpers -------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(method, path, body, signal) {
    const init = { method, signal, headers: {} };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  let toastTimer = null;
  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 3500);
  }

  function alertBox(text) {
    $("alert-text").textContent = text;
    $("alert-dialog").showModal();
  }

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      if (["http:", "https:", "mailto:", "tel:", "tg:"].includes(url.protocol)) return url.href;
    } catch (error) {
      return null;
    }
    return null;
  }

  function formatTime(unix) {
    return new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function formatSize(bytes) {
    if (bytes === undefined) return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // --- text + entities -> DOM --------------------------------------------------------
  // Offsets are UTF-16 code units, exactly what JavaScript string indexes count.

  function renderFormatted(text, entities) {
    const fragment = document.createDocumentFragment();
    const sorted = (entities || [])
      .filter((e) => e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    buildEntities(fragment, text, 0, text.length, sorted);
    return fragment;
  }

  function buildEntities(parent, text, start, end, list) {
    let position = start;
    let index = 0;
    while (index < list.length) {
      const entity = list[index];
      const entityEnd = entity.offset + entity.length;
      const inside = [];
      let next = index + 1;
      while (next < list.length && list[next].offset < entityEnd) inside.push(list[next++]);
      const from = Math.max(entity.offset, position);
      const to = Math.min(entityEnd, end);
      if (from < to) {
        if (from > position) parent.append(text.slice(position, from));
        const node = entityNode(entity, text.slice(from, to));
        buildEntities(node.inner, text, from, to, inside);
        parent.append(node.outer);
        position = to;
      }
      index = next;
    }
    if (position < end) parent.append(text.slice(position, end));
  }

  function link(href) {
    const url = safeUrl(href);
    return url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", title: url }) : el("span");
  }

  function entityNode(entity, covered) {
    const same = (node) => ({ outer: node, inner: node });
    switch (entity.type) {
      case "bold": return same(el("strong"));
      case "italic": return same(el("em"));
      case "underline": return same(el("u"));
      case "strikethrough": return same(el("s"));
      case "code": return same(el("code"));
      case "pre": {
        const code = el("code", { "data-language": entity.language });
        return { outer: el("pre", {}, code), inner: code };
      }
      case "blockquote":
      case "expandable_blockquote": return same(el("blockquote"));
      case "spoiler": {
        const node = el("span", { class: "spoiler", title: "Spoiler: click to reveal" });
        node.addEventListener("click", () => node.classList.add("revealed"));
        return same(node);
      }
      case "text_link": return same(link(entity.url));
      case "url": return same(link(/^[a-z][a-z0-9+.-]*:/i.test(covered) ? covered : `https://${covered}`));
      case "email": return same(link(`mailto:${covered}`));
      case "phone_number": return same(link(`tel:${covered.replace(/[^+\d]/g, "")}`));
      case "bot_command": {
        const node = el("a", { class: "command", href: "#", title: "Send this command" });
        node.addEventListener("click", (event) => {
          event.preventDefault();
          sendText(covered.split("@")[0]);
        });
        return same(node);
      }
      case "mention":
      case "hashtag":
      case "cashtag":
      case "text_mention": return same(el("span", { class: entity.type === "text_mention" ? "mention" : entity.type }));
      default: return same(el("span"));
    }
  }

  // --- messages -----------------------------------------------------------------------

  function summary(message) {
    if (message.text) return message.text;
    if (message.caption) return message.caption;
    for (const kind of ["photo", "document", "location", "sticker", "voice", "contact", "venue"]) {
      if (message[kind]) return `[${kind}]`;
    }
    return "[message]";
  }

  function mediaNodes(entry) {
    const message = entry.message;
    const nodes = [];
    if (message.photo) {
      const image = el("img", { class: "photo", src: entry.file_url, alt: "Photo" });
      // Images grow the chat after it scrolled; keep following the newest message.
      image.addEventListener("load", () => {
        if (state.pinnedToBottom) $("chat").scrollTop = $("chat").scrollHeight;
      });
      nodes.push(entry.file_url ? image : el("div", {}, "🖼️ Photo"));
    }
    if (message.document || message.audio || message.video || message.animation || message.video_note) {
      const file = message.document || message.audio || message.video || message.animation || message.video_note;
      const name = file.file_name || (message.audio ? "audio" : message.video ? "video" : "file");
      const anchor = entry.file_url ? el("a", { href: entry.file_url, download: name }, name) : name;
      nodes.push(el("div", { class: "attachment" }, "📄", anchor, el("span", { class: "meta" }, formatSize(file.file_size))));
    }
    if (message.sticker) nodes.push(el("div", { class: "sticker", title: "Sticker" }, message.sticker.emoji || "🖼️"));
    if (message.voice) nodes.push(el("div", { class: "attachment" }, `🎤 Voice message · ${message.voice.duration}s`));
    if (message.venue) nodes.push(el("div", {}, el("strong", {}, message.venue.title), el("br"), message.venue.address));
    if (message.location) {
      const { latitude, longitude } = message.location;
      nodes.push(el("div", { class: "location-card" }, `📍 ${latitude.toFixed(5)}, ${longitude.toFixed(5)}`));
    }
    if (message.contact) {
      const contact = message.contact;
      const name = [contact.first_name, contact.last_name].filter(Boolean).join(" ");
      nodes.push(el("div", { class: "attachment" }, `👤 ${name} · ${contact.phone_number}`));
    }
    return nodes;
  }

  function inlineKeyboard(entry) {
    const rows = entry.message.reply_markup.inline_keyboard;
    const board = el("div", { class: "inline-keyboard" });
    for (const row of rows) {
      const line = el("div", { class: "inline-row" });
      for (const button of row) {
        const node = el("button", { type: "button", title: button.text, class: button.url ? "url" : "" }, button.text);
        node.addEventListener("click", () => pressInline(entry.message_id, button, node));
        line.append(node);
      }
      board.append(line);
    }
    return board;
  }

  function renderMessage(entry) {
    const message = entry.message;
    const classes = ["message", entry.from_bot ? "bot" : "user"];
    if (entry.deleted) classes.push("deleted");
    const root = el("div", { class: classes.join(" "), id: `message-${entry.message_id}`, "data-id": entry.message_id });
    const bubble = el("div", { class: "bubble" });
    if (message.reply_to_message) bubble.append(el("div", { class: "reply-quote" }, summary(message.reply_to_message)));
    bubble.append(...mediaNodes(entry));
    if (message.text) bubble.append(renderFormatted(message.text, message.entities));
    if (message.caption) bubble.append(el("div", {}, renderFormatted(message.caption, message.caption_entities)));
    const notes = [formatTime(message.date)];
    if (message.edit_date) notes.unshift("edited");
    if (entry.deleted) notes.unshift("deleted");
    bubble.append(el("div", { class: "meta" }, notes.join(" · ")));
    root.append(bubble);
    if (message.reply_markup && message.reply_markup.inline_keyboard && !entry.deleted) root.append(inlineKeyboard(entry));
    return root;
  }

  function placeMessage(entry) {
    const chat = $("chat");
    const node = renderMessage(entry);
    const existing = document.getElementById(`message-${entry.message_id}`);
    if (existing) {
      existing.replaceWith(node);
      return false;
    }
    const later = [...chat.querySelectorAll(".message")].find((other) => Number(other.dataset.id) > entry.message_id);
    chat.insertBefore(node, later || null);
    return true;
  }

  // --- keyboards -----------------------------------------------------------------------

  function renderReplyKeyboard() {
    const area = $("reply-keyboard");
    const keyboard = state.keyboard;
    area.replaceChildren();
    $("keyboard-toggle").hidden = !keyboard;
    $("composer-input").placeholder = (keyboard && keyboard.input_field_placeholder) || "Message";
    if (!keyboard || state.keyboardHidden) {
      area.hidden = true;
      return;
    }
    for (const row of keyboard.keyboard) {
      const line = el("div", { class: "reply-row" });
      for (const button of row) {
        let label = button.text;
        if (button.request_location) label = `📍 ${label}`;
        if (button.request_contact) label = `👤 ${label}`;
        line.append(el("button", { type: "button", onclick: () => pressReply(button) }, label));
      }
      area.append(line);
    }
    area.hidden = false;
  }

  function pressReply(button) {
    if (button.request_location) {
      openLocationDialog();
    } else if (button.request_contact) {
      const phone = window.prompt("Phone number to share", "+32 470 00 00 00");
      if (phone) sendBody({ contact: { phone_number: phone } });
    } else if (button.request_users || button.request_chat || button.request_poll || button.web_app) {
      toast("This kind of button is not available in the playground.");
    } else {
      sendText(button.text);
    }
  }

  async function pressInline(messageId, button, node) {
    if (button.url) {
      const url = safeUrl(button.url);
      if (url) window.open(url, "_blank", "noopener");
      return;
    }
    if (button.callback_data === undefined) {
      toast("This kind of button is not available in the playground.");
      return;
    }
    node.classList.add("pending");
    try {
      // Waits like a Telegram app does, showing the button busy until the bot answers.
      await api("POST", `/emulator/chats/${state.chatId}/messages/${messageId}/press`, {
        data: button.callback_data,
        wait_answer: 15,
      });
    } catch (error) {
      toast(error.message);
    } finally {
      node.classList.remove("pending");
    }
  }

  // --- sending ---------------------------------------------------------------------------

  async function sendBody(body) {
    if (state.chatId === null) return;
    if (state.forceReplyTo !== null && body.text !== undefined) {
      body.reply_to_message_id = state.forceReplyTo;
      state.forceReplyTo = null;
    }
    try {
      await api("POST", `/emulator/chats/${state.chatId}/messages`, body);
    } catch (error) {
      toast(error.message);
    }
  }

  function sendText(text) {
    const trimmed = text.trim();
    if (trimmed) sendBody({ text: trimmed });
  }

  async function sendFile(kind, file) {
    const form = new FormData();
    form.append(kind, file, file.name);
    const caption = $("composer-input").value.trim();
    if (caption) form.append("caption", caption);
    $("composer-input").value = "";
    try {
      await api("POST", `/emulator/chats/${state.chatId}/messages`, form);
    } catch (error) {
      toast(error.message);
    }
  }

  // --- location dialog ----------------------------------------------------------------

  function setCity(index) {
    const [, latitude, longitude] = CITIES[index];
    $("latitude").value = latitude;
    $("longitude").value = longitude;
  }

  function openLocationDialog() {
    const preferred = state.language === "fr" ? 1 : 0;
    $("location-city").value = String(preferred);
    setCity(preferred);
    $("location-dialog").showModal();
  }

  // --- popovers ---------------------------------------------------------------------------

  function openPopover(popover, anchor) {
    closePopovers();
    const rect = anchor.getBoundingClientRect();
    popover.hidden = false;
    popover.style.left = `${Math.max(8, rect.left)}px`;
    popover.style.bottom = `${window.innerHeight - rect.top + 6}px`;
  }

  function closePopovers() {
    for (const popover of document.querySelectorAll(".popover")) popover.hidden = true;
  }

  async function showCommands(anchor) {
    const popover = $("commands-popover");
    popover.replaceChildren(el("div", { class: "empty" }, "Loading…"));
    openPopover(popover, anchor);
    try {
      const query = new URLSearchParams({ chat_id: state.chatId, language_code: state.language });
      const { commands } = await api("GET", `/emulator/commands?${query}`);
      popover.replaceChildren();
      if (!commands.length) popover.append(el("div", { class: "empty" }, "The bot set no commands."));
      for (const command of commands) {
        popover.append(el("button", {
          type: "button",
          role: "menuitem",
          onclick: () => { closePopovers(); sendText(`/${command.command}`); },
        }, `/${command.command}`, el("span", { class: "description" }, command.description)));
      }
    } catch (error) {
      popover.replaceChildren(el("div", { class: "empty" }, error.message));
    }
  }

  // --- history long poll ------------------------------------------------------------

  function showChatAction(action) {
    clearTimeout(state.actionTimer);
    const status = $("bot-status");
    if (action && action.until * 1000 > Date.now()) {
      status.textContent = ACTIONS[action.action] || "busy…";
      status.classList.add("typing");
      state.actionTimer = setTimeout(() => showChatAction(null), action.until * 1000 - Date.now());
    } else {
      status.textContent = state.botLabel;
      status.classList.remove("typing");
    }
  }

  function applyHistory(history, initial) {
    const chat = $("chat");
    const nearBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
    let added = false;
    for (const entry of history.messages) {
      state.messages.set(entry.message_id, entry);
      added = placeMessage(entry) || added;
      if (entry.from_bot && entry.reply_keyboard && entry.reply_keyboard.force_reply && !entry.deleted) {
        state.forceReplyTo = entry.message_id;
      }
    }
    $("empty-state").hidden = state.messages.size > 0;
    if (added && (initial || nearBottom || history.messages.some((m) => !m.from_bot))) {
      chat.scrollTop = chat.scrollHeight;
      state.pinnedToBottom = true;
    }

    const keyboard = history.keyboard;
    const isNew = keyboard && (!state.keyboard || state.keyboard.message_id !== keyboard.message_id);
    if (isNew || (keyboard && keyboard.collapsed && !state.keyboard.collapsed)) state.keyboardHidden = Boolean(keyboard.collapsed);
    state.keyboard = keyboard;
    renderReplyKeyboard();

    for (const answer of history.callback_answers) {
      if (state.answersSeen.has(answer.callback_query_id)) continue;
      state.answersSeen.add(answer.callback_query_id);
      if (initial) continue;
      if (answer.show_alert && answer.text) alertBox(answer.text);
      else if (answer.text) toast(answer.text);
      else if (answer.url) toast(`The bot asked to open ${answer.url}`);
    }

    state.blocked = history.blocked;
    const blockButton = $("block-toggle");
    blockButton.setAttribute("aria-pressed", String(state.blocked));
    blockButton.title = state.blocked ? "Unblock the bot" : "Block the bot";
    showChatAction(history.chat_action);
  }

  async function pollHistory(generation, signal) {
    let failures = 0;
    let initial = true;
    while (generation === state.generation) {
      try {
        const query = new URLSearchParams({ since: state.revision, wait: POLL_SECONDS });
        const history = await api("GET", `/emulator/chats/${state.chatId}/history?${query}`, undefined, signal);
        if (generation !== state.generation) return;
        state.revision = history.revision;
        applyHistory(history, initial);
        initial = false;
        failures = 0;
      } catch (error) {
        if (signal.aborted || generation !== state.generation) return;
        failures += 1;
        $("bot-status").textContent = "emulator unreachable, retrying…";
        await sleep(Math.min(5000, 300 * 2 ** failures));
      }
    }
  }

  function openChat(userId) {
    if (state.abort) state.abort.abort();
    state.generation += 1;
    state.abort = new AbortController();
    const persona = state.personas.find((p) => p.user_id === userId);
    state.chatId = userId;
    state.language = (persona && persona.language_code) || "en";
    state.revision = 0;
    state.messages.clear();
    state.answersSeen.clear();
    state.keyboard = null;
    state.keyboardHidden = false;
    state.forceReplyTo = null;
    for (const node of document.querySelectorAll("#chat .message")) node.remove();
    $("empty-state").hidden = false;
    renderReplyKeyboard();
    localStorage.setItem("playground.persona", String(userId));
    pollHistory(state.generation, state.abort.signal);
  }

  // --- bot status and personas ------------------------------------------------------

  async function refreshBot() {
    try {
      const bot = await api("GET", "/emulator/bot");
      $("bot-name").textContent = bot.first_name;
      document.title = `${bot.first_name} · playground`;
      const how = bot.mode === "idle" ? "" : ` · ${bot.mode}`;
      state.botLabel = bot.connected ? `@${bot.username}${how}` : "waiting for the bot to connect…";
      if (!$("bot-status").classList.contains("typing")) $("bot-status").textContent = state.botLabel;
    } catch (error) {
      state.botLabel = "emulator unreachable";
    }
  }

  function personaOption(persona) {
    const label = persona.label ? `${persona.first_name} · ${persona.label}` : persona.first_name;
    return el("option", { value: persona.user_id }, label);
  }

  async function addCustomUser() {
    const id = Number(window.prompt("Telegram user id (a positive number)", "500001"));
    if (!Number.isInteger(id) || id <= 0) return null;
    const firstName = window.prompt("First name", `User ${id}`) || `User ${id}`;
    const language = (window.prompt("Language code", "en") || "en").slice(0, 2).toLowerCase();
    await api("PUT", `/emulator/users/${id}`, { first_name: firstName, language_code: language });
    const persona = { user_id: id, first_name: firstName, language_code: language, label: "Custom" };
    state.personas.push(persona);
    const select = $("persona");
    select.insertBefore(personaOption(persona), select.lastElementChild);
    const stored = JSON.parse(localStorage.getItem("playground.custom") || "[]");
    stored.push(persona);
    localStorage.setItem("playground.custom", JSON.stringify(stored));
    return id;
  }

  async function loadPersonas() {
    const { personas } = await api("GET", "/emulator/personas");
    const custom = JSON.parse(localStorage.getItem("playground.custom") || "[]");
    state.personas = [...personas, ...custom.filter((c) => !personas.some((p) => p.user_id === c.user_id))];
    const select = $("persona");
    select.replaceChildren(...state.personas.map(personaOption), el("option", { value: "custom" }, "Someone else…"));
    const saved = Number(localStorage.getItem("playground.persona"));
    const initial = state.personas.some((p) => p.user_id === saved) ? saved : (state.personas[0] || {}).user_id;
    if (initial !== undefined) {
      select.value = String(initial);
      openChat(initial);
    }
  }

  // --- wiring ------------------------------------------------------------------------------

  function wire() {
    $("chat").addEventListener("scroll", () => {
      const chat = $("chat");
      state.pinnedToBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
    });
    $("composer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("composer-input");
      sendText(input.value);
      input.value = "";
    });
    $("persona").addEventListener("change", async (event) => {
      const value = event.target.value;
      if (value === "custom") {
        const id = await addCustomUser().catch((error) => { toast(error.message); return null; });
        event.target.value = String(id ?? state.chatId);
        if (id !== null) openChat(id);
        return;
      }
      openChat(Number(value));
    });
    $("block-toggle").addEventListener("click", async () => {
      const action = state.blocked ? "unblock" : "block";
      try {
        await api("POST", `/emulator/chats/${state.chatId}/${action}`, {});
        toast(state.blocked ? "Bot unblocked" : "Bot blocked: it can no longer write to you");
      } catch (error) {
        toast(error.message);
      }
    });
    $("commands-button").addEventListener("click", (event) => showCommands(event.currentTarget));
    $("attach-button").addEventListener("click", (event) => openPopover($("attach-popover"), event.currentTarget));
    $("location-button").addEventListener("click", openLocationDialog);
    $("keyboard-toggle").addEventListener("click", () => {
      state.keyboardHidden = !state.keyboardHidden;
      renderReplyKeyboard();
    });
    for (const button of document.querySelectorAll("[data-attach]")) {
      button.addEventListener("click", () => {
        closePopovers();
        $(`${button.dataset.attach}-input`).click();
      });
    }
    for (const kind of ["photo", "document"]) {
      $(`${kind}-input`).addEventListener("change", (event) => {
        const [file] = event.target.files;
        if (file) sendFile(kind, file);
        event.target.value = "";
      });
    }
    for (const button of document.querySelectorAll("[data-command]")) {
      button.addEventListener("click", () => sendText(button.dataset.command));
    }
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".popover, #commands-button, #attach-button")) closePopovers();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closePopovers();
    });

    const citySelect = $("location-city");
    CITIES.forEach(([name], index) => citySelect.append(el("option", { value: index }, `${name} (centre)`)));
    citySelect.addEventListener("change", () => setCity(Number(citySelect.value)));
    $("location-cancel").addEventListener("click", () => $("location-dialog").close());
    $("location-form").addEventListener("submit", (event) => {
      const latitude = Number($("latitude").value);
      const longitude = Number($("longitude").value);
      if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) {
        event.preventDefault();
        return;
      }
      sendBody({ location: { latitude, longitude } });
    });
  }

  wire();
  refreshBot();
  setInterval(refreshBot, 10000);
  loadPersonas().catch((error) => toast(`Could not load personas: ${error.message}`));
})();
