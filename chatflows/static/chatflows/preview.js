// Chat preview: runs a flow through the same REST API a bot uses (session + CSRF).
"use strict";
(function () {
  const root = document.getElementById("preview");
  const log = document.getElementById("log");
  const typing = document.getElementById("typing");
  const form = document.getElementById("composer");
  const input = document.getElementById("answer");
  const sendButton = form.querySelector("button");
  const choices = document.getElementById("choices");
  const ended = document.getElementById("ended");
  const attributes = document.getElementById("attributes");
  const status = document.getElementById("status");
  const fast = document.getElementById("fast");

  let conversation = null;
  let run = 0; // bumped on restart, so a stale reply is not shown

  // What each `expects` value makes of the input field.
  const INPUTS = {
    phone: { type: "tel", inputmode: "tel", autocomplete: "tel", placeholder: "+1 415 555 2671" },
    code: { type: "text", inputmode: "numeric", autocomplete: "one-time-code",
      placeholder: "Code from the SMS", pattern: "[0-9 ]*" },
    text: { type: "text", inputmode: "text", autocomplete: "off", placeholder: "Type a message" },
  };

  async function call(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": root.dataset.csrfToken,
      },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.detail || "The server answered " + response.status + ".");
    }
    return data;
  }

  function bubble(sender, text) {
    const item = document.createElement("li");
    item.className = "bubble " + sender;
    item.textContent = text;
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function wait(seconds) {
    const ms = seconds * (fast.checked ? 100 : 1000);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function showAttributes(values) {
    attributes.replaceChildren();
    const names = Object.keys(values || {}).sort();
    if (names.length === 0) {
      const none = document.createElement("dd");
      none.textContent = "none yet";
      attributes.appendChild(none);
    }
    for (const name of names) {
      const term = document.createElement("dt");
      term.textContent = name;
      const value = document.createElement("dd");
      value.textContent = JSON.stringify(values[name]);
      attributes.append(term, value);
    }
  }

  function setInput(expects, options) {
    form.hidden = expects === "choice" || expects === null;
    choices.hidden = expects !== "choice";
    ended.hidden = expects !== null;
    input.disabled = sendButton.disabled = form.hidden;
    choices.replaceChildren();
    if (expects === "choice") {
      for (const option of options) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = option;
        button.addEventListener("click", () => answer(option));
        choices.appendChild(button);
      }
      return;
    }
    if (expects === null) return;
    const spec = INPUTS[expects] || INPUTS.text;
    input.type = spec.type;
    for (const name of ["inputmode", "autocomplete", "placeholder", "pattern"]) {
      if (spec[name]) input.setAttribute(name, spec[name]);
      else input.removeAttribute(name);
    }
    input.dataset.expects = expects;
    input.focus();
  }

  function busy() {
    input.disabled = sendButton.disabled = true;
    for (const button of choices.querySelectorAll("button")) button.disabled = true;
  }

  async function show(reply, mine) {
    conversation = reply;
    for (const message of reply.messages) {
      if (mine !== run) return;
      if (message.type === "delay") {
        typing.hidden = false;
        typing.scrollIntoView({ block: "end" });
        await wait(message.seconds);
        typing.hidden = true;
      } else if (message.type === "text") {
        bubble("bot", message.text);
      }
    }
    if (mine !== run) return;
    showAttributes(reply.attributes);
    status.textContent = reply.error ? "Flow error: " + reply.error : statusText(reply);
    setInput(reply.status === "finished" ? null : reply.expects, reply.choices || []);
  }

  const AWAITED = {
    phone: "a phone number",
    code: "the one-time code",
    text: "an answer",
    choice: "a choice",
  };

  function statusText(reply) {
    if (reply.status === "finished") return "Finished";
    return "Waiting for " + (AWAITED[reply.expects] || "the user's input");
  }

  function failed(error) {
    bubble("system", error.message);
    if (conversation) {
      setInput(conversation.status === "finished" ? null : conversation.expects,
        conversation.choices || []);
    }
  }

  async function answer(text) {
    const mine = run;
    bubble("user", text);
    busy();
    typing.hidden = false;
    try {
      const url = root.dataset.messageUrl.replace("CONVERSATION", conversation.id);
      const reply = await call(url, { text: text });
      typing.hidden = true;
      await show(reply, mine);
    } catch (error) {
      typing.hidden = true;
      failed(error);
    }
  }

  async function start() {
    const mine = ++run;
    conversation = null;
    log.replaceChildren();
    showAttributes({});
    busy();
    typing.hidden = false;
    try {
      const reply = await call(root.dataset.startUrl, { user_ref: "admin-preview" });
      typing.hidden = true;
      await show(reply, mine);
    } catch (error) {
      typing.hidden = true;
      failed(error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    answer(text);
  });
  for (const button of document.querySelectorAll("[data-restart]")) {
    button.addEventListener("click", start);
  }
  start();
})();
