// salesbot 企业微信模拟器 console: plain JS, no build step, no network beyond this server.
"use strict";

const $ = (sel) => document.querySelector(sel);
const S = {
  epoch: null, since: 0, members: [], current: null,
  timelines: {},     // userid (or "*" for everyone) -> [item]
  cards: {},         // message seq -> latest delivered message (cards change in place)
  unread: {},
  wireCount: 0,
};
const ROLE_ORDER = ["rep", "manager", "finance", "csm", "risk", "admin"];
const CARD_NAMES = {
  text_notice: "文本通知卡片", news_notice: "图文展示卡片", button_interaction: "按钮交互卡片",
  vote_interaction: "投票选择卡片", multiple_interaction: "多项选择卡片",
};

// ---- small helpers --------------------------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function unesc(s) {
  const t = document.createElement("textarea");
  t.innerHTML = s;
  return t.value;
}
function safeUrl(u) {
  u = String(u ?? "").trim();
  return /^(https?:\/\/|\/(?!\/))/i.test(u) ? u : null;
}
function linkHtml(url, textHtml) {
  return `<a href="${esc(url)}" data-open="${esc(url)}">${textHtml}</a>`;
}
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
function hhmm(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return d.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function member(userid) {
  return S.members.find((m) => m.userid === userid);
}
function nameOf(userid) {
  const m = member(userid);
  return m ? m.name : userid;
}
async function postJson(url, data) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
  return handleAnswer(r);
}
async function postForm(url, form) {
  const r = await fetch(url, { method: "POST", body: form });
  return handleAnswer(r);
}
async function handleAnswer(r) {
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok || data.error) localNotice(data.error || `请求失败：HTTP ${r.status}`);
  else if (data.status && data.status !== 200) localNotice(`回调返回 HTTP ${data.status}`);
  return data;
}

// ---- rendering what WeCom shows -----------------------------------------------------------------

// text messages may carry <a href="…">…</a>; everything else is shown as typed
function renderText(text) {
  const re = /<a\s+href=["']([^"']+)["']\s*>([\s\S]*?)<\/a>/gi;
  let out = "", last = 0, m;
  while ((m = re.exec(text)) !== null) {
    out += esc(text.slice(last, m.index));
    const url = safeUrl(m[1]);
    out += url ? linkHtml(url, esc(m[2])) : esc(m[0]);
    last = re.lastIndex;
  }
  return out + esc(text.slice(last));
}

// WeCom's markdown subset: headings, bold, links, inline code, quotes, <font color="info|comment|warning">
function inlineMd(s) {
  s = s.replace(/&lt;font color=(?:&quot;|&#39;)(info|comment|warning)(?:&quot;|&#39;)&gt;([\s\S]*?)&lt;\/font&gt;/g,
    '<span class="font-$1">$2</span>');
  s = s.replace(/`([^`]+)`/g, "<code>$1</code>");
  s = s.replace(/\*\*([^*]+?)\*\*/g, "<strong>$1</strong>");
  s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (all, t, u) => {
    const url = safeUrl(unesc(u));
    return url ? linkHtml(url, t) : all;
  });
  return s;
}
function renderMarkdown(text) {
  return String(text).split("\n").map((line) => {
    const e = esc(line);
    let m;
    if ((m = e.match(/^(#{1,6}) (.*)$/))) return `<h${m[1].length}>${inlineMd(m[2])}</h${m[1].length}>`;
    if ((m = e.match(/^&gt; ?(.*)$/))) return `<blockquote>${inlineMd(m[1])}</blockquote>`;
    if (!e.trim()) return "<p>&nbsp;</p>";
    return `<p>${inlineMd(e)}</p>`;
  }).join("");
}
function renderTextcardDescription(text) {
  return esc(text).replace(/&lt;div class=(?:&quot;|&#39;)(gray|normal|highlight)(?:&quot;|&#39;)&gt;([\s\S]*?)&lt;\/div&gt;/g,
    (all, cls, inner) => `<div class="${cls === "gray" ? "font-comment" : cls === "highlight" ? "font-warning" : ""}">${inner}</div>`)
    .replace(/&lt;br\s*\/?&gt;/g, "<br>");
}

function renderCard(m) {
  const c = m.body || {};
  const st = m.card_state || {};
  const type = c.card_type || "";
  const replaced = st.replace_name;
  const card = h("div", { class: `card card-${type}`, "data-seq": m.seq, "data-task": m.task_id || "" });
  const openUrl = (url) => { const u = safeUrl(url); if (u) openCustomer(u); };

  if (c.source) card.append(h("div", { class: "source" }, c.source.desc || ""));
  const main = c.main_title || {};
  if (main.title) card.append(h("div", { class: "title" }, main.title));
  if (main.desc) card.append(h("div", { class: "desc" }, main.desc));
  if (c.emphasis_content) {
    card.append(h("div", { class: "emphasis" }, h("div", { class: "big" }, c.emphasis_content.title || ""),
      h("div", { class: "desc" }, c.emphasis_content.desc || "")));
  }
  if (c.quote_area) {
    const q = c.quote_area;
    card.append(h("div", { class: "quote" }, q.title ? h("div", {}, q.title) : null, q.quote_text || ""));
  }
  if (c.card_image && c.card_image.url) {
    card.append(h("img", { class: "image", src: safeUrl(c.card_image.url) || "", alt: "卡片图片" }));
  }
  if (c.image_text_area) {
    const a = c.image_text_area;
    card.append(h("div", { class: "quote" },
      a.image_url ? h("img", { class: "image", src: safeUrl(a.image_url) || "", alt: "" }) : null,
      h("div", { class: "title" }, a.title || ""), h("div", { class: "desc" }, a.desc || "")));
  }
  if (c.sub_title_text) card.append(h("div", { class: "sub" }, c.sub_title_text));
  for (const v of c.vertical_content_list || []) {
    card.append(h("div", { class: "sub" }, h("strong", {}, v.title || ""), v.desc ? " " + v.desc : ""));
  }
  if (c.horizontal_content_list && c.horizontal_content_list.length) {
    const rows = h("div", { class: "rows" });
    for (const r of c.horizontal_content_list) {
      const value = r.type === 1 && safeUrl(r.url)
        ? h("a", { href: r.url, "data-open": r.url }, r.value || r.url) : (r.value || r.userid || "");
      rows.append(h("div", { class: "row" }, h("span", { class: "k" }, r.keyname || ""), h("span", { class: "v" }, value)));
    }
    card.append(rows);
  }
  if (c.jump_list && c.jump_list.length) {
    const jumps = h("div", { class: "jumps" });
    for (const j of c.jump_list) {
      jumps.append(safeUrl(j.url) ? h("a", { href: j.url, "data-open": j.url }, j.title || j.url) : h("div", {}, j.title || ""));
    }
    card.append(jumps);
  }

  const selections = {};   // question_key -> () => [option ids]
  const controls = [];
  if (c.button_selection) {
    const b = c.button_selection;
    const sel = h("select", { "data-question": b.question_key });
    for (const o of b.option_list || []) sel.append(h("option", { value: o.id, selected: o.id === b.selected_id }, o.text));
    controls.push(sel);
    selections[b.question_key] = () => [sel.value];
    card.append(h("label", { class: "select" }, h("span", {}, b.title || ""), sel));
  }
  if (c.checkbox) {
    const box = c.checkbox;
    const multi = box.mode === 1;
    const fs = h("fieldset", { "data-question": box.question_key });
    for (const o of box.option_list || []) {
      const input = h("input", { type: multi ? "checkbox" : "radio", name: `q-${m.seq}-${box.question_key}`, value: o.id, checked: !!o.is_checked });
      controls.push(input);
      fs.append(h("label", {}, input, " ", o.text));
    }
    selections[box.question_key] = () => [...fs.querySelectorAll("input:checked")].map((i) => i.value);
    card.append(fs);
  }
  for (const s of c.select_list || []) {
    const sel = h("select", { "data-question": s.question_key });
    for (const o of s.option_list || []) sel.append(h("option", { value: o.id, selected: o.id === s.selected_id }, o.text));
    controls.push(sel);
    selections[s.question_key] = () => [sel.value];
    card.append(h("label", { class: "select" }, h("span", {}, s.title || ""), sel));
  }
  const selected = () => Object.fromEntries(Object.entries(selections).map(([k, f]) => [k, f()]));

  const buttons = h("div", { class: "buttons" });
  if (replaced) {
    buttons.append(h("button", { type: "button", class: "replaced", disabled: true }, replaced));
    controls.forEach((el) => { el.disabled = true; });
  } else if (c.button_list) {
    for (const b of c.button_list) {
      const style = b.style || 1;
      buttons.append(h("button", {
        type: "button", class: `s${style}`, "data-key": b.key || "",
        onclick: (ev) => (b.type === 1 ? openUrl(b.url) : clickCard(m, b.key, selected(), ev.currentTarget)),
      }, b.text || ""));
    }
  } else if (c.submit_button) {
    buttons.append(h("button", {
      type: "button", class: "s1", "data-key": c.submit_button.key || "",
      onclick: (ev) => clickCard(m, c.submit_button.key, selected(), ev.currentTarget),
    }, c.submit_button.text || "提交"));
  }
  if (buttons.childNodes.length) card.append(buttons);
  if (c.card_action && (c.card_action.type === 1 || c.card_action.url)) {
    card.append(h("div", { class: "action", onclick: () => openUrl(c.card_action.url) }, "查看详情 ›"));
  }
  card.append(h("div", { class: "ctype" }, CARD_NAMES[type] || type));
  return card;
}

function renderBotMessage(m) {
  const body = m.body || {};
  if (m.msgtype === "template_card") return renderCard(S.cards[m.seq] || m);
  const bubble = h("div", { class: "bubble" });
  if (m.msgtype === "markdown") {
    bubble.classList.add("md");
    bubble.innerHTML = renderMarkdown(body.content || "");
  } else if (m.msgtype === "image") {
    bubble.append(h("img", { class: "pic", src: `api/media/${encodeURIComponent(body.media_id || "")}`, alt: "图片" }));
  } else if (m.msgtype === "textcard") {
    bubble.classList.add("card");
    bubble.append(h("div", { class: "title" }, body.title || ""));
    const d = h("div", { class: "sub" });
    d.innerHTML = renderTextcardDescription(body.description || "");
    bubble.append(d);
    if (safeUrl(body.url)) bubble.append(h("div", { class: "action", onclick: () => openCustomer(body.url) }, (body.btntxt || "详情") + " ›"));
  } else {
    bubble.innerHTML = renderText(body.content || "");
  }
  return bubble;
}

function renderSent(e) {
  const bubble = h("div", { class: "bubble" });
  if (e.kind === "text") bubble.textContent = e.content;
  else if (e.kind === "image") bubble.append(h("img", { class: "pic", src: `api/media/${encodeURIComponent(e.media_id || "")}`, alt: e.filename || "图片" }));
  else if (e.kind === "voice" || e.kind === "video") {
    bubble.append(`[${e.kind === "voice" ? "语音" : "视频"}] `, h("a", { href: `api/media/${encodeURIComponent(e.media_id || "")}` }, e.filename || e.media_id));
  } else if (e.kind === "link") {
    bubble.append("[链接] ", h("strong", {}, e.title || ""), h("br"));
    if (safeUrl(e.url)) bubble.append(h("a", { href: e.url, "data-open": e.url }, e.url));
    if (e.description) bubble.append(h("div", { class: "muted" }, e.description));
  } else if (e.kind === "location") bubble.textContent = `[位置] ${e.label || ""}（${e.x}, ${e.y}）`;
  return bubble;
}

// ---- the timeline ---------------------------------------------------------------------------

function itemFor(e) {
  switch (e.type) {
    case "sent":
      if (e.kind === "click") return { user: e.user, id: e.id, kind: "system", level: "", text: `${nameOf(e.user)} 点击了「${e.card_title || "卡片"}」的「${e.label || e.key}」${e.duplicate ? "（重复投递，已忽略）" : ""}` };
      if (e.kind === "event") return { user: e.user, id: e.id, kind: "system", level: "", text: `事件 ${e.event}` };
      return { user: e.user, id: e.id, kind: "sent", e };
    case "reply":
      if (e.msgtype === "update_button") return null;  // the card itself shows it
      return { user: e.user, id: e.id, kind: "bot", via: "被动回复", at: e.at, message: { msgtype: "text", body: { content: e.content } } };
    case "push":
      return { user: e.user, id: e.id, kind: "bot", via: "推送", at: e.at, message: e.message };
    case "notice":
      return { user: e.user || "*", id: e.id, kind: "system", level: e.level || "error", text: e.text };
    default:
      return null;
  }
}

function nodeFor(item) {
  if (item.kind === "system") return h("div", { class: `system ${item.level}`, id: `ev-${item.id}` }, item.text);
  if (item.kind === "sent") {
    const e = item.e;
    return h("div", { class: `msg mine${e.duplicate ? " dup" : ""}`, id: `ev-${item.id}`, "data-kind": e.kind },
      h("div", { class: "avatar" }, nameOf(e.user).slice(-2)),
      h("div", {}, renderSent(e), h("div", { class: "meta" }, hhmm(e.at), e.duplicate ? " · 重复投递，已忽略" : "")));
  }
  const m = item.message;
  return h("div", { class: "msg bot", id: `ev-${item.id}`, "data-msgtype": m.msgtype },
    h("div", { class: "avatar" }, "机器人"),
    h("div", {}, renderBotMessage(m), h("div", { class: "meta" }, hhmm(item.at), h("span", { class: "via" }, item.via))));
}

function apply(e, loading) {
  if (e.type === "wire") { addWire(e); return; }
  if (e.type === "recording") { setRecCount(e.steps || 0); return; }
  if (e.type === "push" && e.message.msgtype === "template_card") S.cards[e.message.seq] = e.message;
  if (e.type === "card") {
    S.cards[e.message.seq] = e.message;
    const old = document.querySelector(`.card[data-seq="${e.message.seq}"]`);
    if (old) old.replaceWith(renderCard(e.message));
    return;
  }
  const item = itemFor(e);
  if (!item) return;
  (S.timelines[item.user] ||= []).push(item);
  if (e.type === "sent" && !member(e.user)) refreshMembersSoon();
  if (e.type === "reply" || e.type === "push") refreshMembersSoon();
  if (item.user === S.current || item.user === "*") {
    if (!loading) appendNode(item);
  } else if (item.kind === "bot") {
    S.unread[item.user] = (S.unread[item.user] || 0) + 1;
    if (!loading) renderMembers();
  }
}

function appendNode(item) {
  const box = $("#messages");
  if (!S.current || document.getElementById(`ev-${item.id}`)) return;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.append(nodeFor(item));
  if (nearBottom || item.kind === "sent") box.scrollTop = box.scrollHeight;
}

function localNotice(text) {
  appendNode({ id: `local-${Date.now()}-${Math.random()}`, kind: "system", level: "error", text });
}

function renderChat() {
  const box = $("#messages");
  box.replaceChildren();
  const head = $("#chat-head");
  if (!S.current) {
    head.textContent = "请选择左侧的成员";
    $("#composer").classList.add("disabled");
    return;
  }
  $("#composer").classList.remove("disabled");
  const m = member(S.current);
  head.textContent = `${m ? m.name : S.current}（${S.current}）· ${m ? m.role_names : "未开通"} · 与 salesbot 的对话`;
  const items = [...(S.timelines[S.current] || []), ...(S.timelines["*"] || [])].sort((a, b) => a.id - b.id);
  for (const item of items) box.append(nodeFor(item));
  box.scrollTop = box.scrollHeight;
}

// ---- members --------------------------------------------------------------------------------

function renderMembers() {
  const list = $("#member-list");
  const rank = (m) => {
    const i = Math.min(...(m.roles.length ? m.roles : ["zz"]).map((r) => { const k = ROLE_ORDER.indexOf(r); return k < 0 ? 99 : k; }));
    return i;
  };
  const sorted = [...S.members].sort((a, b) => rank(a) - rank(b) || a.userid.localeCompare(b.userid));
  list.replaceChildren(...sorted.map((m) => h("li", {
    class: `member${m.userid === S.current ? " active" : ""}`, "data-userid": m.userid,
    onclick: () => selectMember(m.userid),
  },
  h("div", { class: "avatar" }, (m.name || m.userid).slice(-2)),
  h("div", { class: "who" }, h("span", { class: "name" }, m.name), h("span", { class: "roles" }, `${m.role_names} · ${m.userid}`)),
  S.unread[m.userid] ? h("span", { class: "badge" }, String(S.unread[m.userid])) : null)));
}

let refreshTimer = null;
function refreshMembersSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      const d = await (await fetch("api/members")).json();
      S.members = d.members || [];
      renderMembers();
      if (S.current) {
        const m = member(S.current);
        if (m) $("#chat-head").textContent = `${m.name}（${m.userid}）· ${m.role_names} · 与 salesbot 的对话`;
      }
    } catch (e) { /* the poll loop reports connection problems */ }
  }, 300);
}

function selectMember(userid) {
  S.current = userid;
  S.unread[userid] = 0;
  try { localStorage.setItem("salesbot.member", userid); } catch (e) { /* private mode */ }
  renderMembers();
  renderChat();
  filterWire();
  $("#input").focus();
}

// ---- sending --------------------------------------------------------------------------------

async function sendText() {
  const input = $("#input");
  const text = input.value;
  if (!S.current || !text.trim()) return;
  input.value = "";
  await postJson("api/send", { as: S.current, type: "text", content: text });
}

async function sendFile(kind, fileInput) {
  const file = fileInput.files[0];
  fileInput.value = "";
  if (!S.current || !file) return;
  const form = new FormData();
  form.append("as", S.current);
  form.append("type", kind);
  form.append("file", file, file.name);
  await postForm("api/send", form);
}

async function clickCard(m, key, selected, button) {
  const card = button.closest(".card");
  card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  const d = await postJson("api/click", { as: m.touser, seq: m.seq, key, selected });
  // the card is re-rendered when the bot updates it; otherwise let the member try again
  setTimeout(() => {
    const still = document.querySelector(`.card[data-seq="${m.seq}"]`);
    if (still === card) card.querySelectorAll("button:not(.replaced)").forEach((b) => { b.disabled = false; });
  }, d.status === 200 ? 1500 : 0);
}

// ---- wire panel ---------------------------------------------------------------------------------

function pre(title, text) {
  if (text === undefined || text === null || text === "") return null;
  return [h("h4", {}, title), h("pre", {}, typeof text === "string" ? text : JSON.stringify(text, null, 1))];
}

function addWire(e) {
  const list = $("#wire");
  const isCb = e.kind === "callback";
  const bad = isCb ? e.status !== 200 : e.errcode !== 0;
  const summary = isCb
    ? [h("span", { class: "dir" }, "→ 回调"), h("span", { class: "what" }, e.summary || ""),
      h("span", { class: "status" }, `HTTP ${e.status} · ${e.elapsed_ms} ms`)]
    : [h("span", { class: "dir" }, "← 接口"), h("span", { class: "what" }, `${e.method} ${e.api}${e.user ? " → " + nameOf(e.user) : ""}`),
      h("span", { class: "status" }, `errcode ${e.errcode} · ${e.elapsed_ms} ms`)];
  const detail = isCb
    ? [pre("请求明文（解密后的 XML）", e.request_plain), pre("请求查询参数", e.query), pre("请求体（线上，加密）", e.request_body),
      pre("响应体（线上，加密）", e.response_body || "（空：无被动回复）"), pre("响应明文（解密后的 XML）", e.response_plain), pre("错误", e.error)]
    : [pre("查询参数", e.query), pre("请求体", e.request_body), pre("响应", e.response_body)];
  const li = h("li", { class: `${isCb ? "cb" : "api"}${bad ? " err" : ""}`, "data-user": e.user || "" },
    h("details", {}, h("summary", {}, ...summary, h("span", { class: "status" }, hhmm(e.at))), h("div", { class: "detail" }, ...detail.flat())));
  list.prepend(li);
  S.wireCount += 1;
  while (list.childElementCount > 400) list.lastElementChild.remove();
  filterWire(li);
}

function filterWire(only) {
  const onlyCurrent = $("#wire-current").checked;
  const items = only ? [only] : [...$("#wire").children];
  for (const li of items) li.hidden = onlyCurrent && li.dataset.user !== (S.current || "");
}

// ---- customer view --------------------------------------------------------------------------

function openCustomer(url) {
  const u = safeUrl(url);
  if (!u) return;
  $("#customer-url").value = u;
  $("#customer-frame").src = u;
  $("#customer-newtab").href = u;
  showTab("customer");
}

function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
  $("#tab-wire").hidden = name !== "wire";
  $("#tab-customer").hidden = name !== "customer";
}

// ---- recording --------------------------------------------------------------------------------

function setRecCount(n) {
  $("#rec-count").textContent = `录制 ${n} 步`;
}

// ---- connection -------------------------------------------------------------------------------

function setConn(ok) {
  const c = $("#conn");
  c.textContent = ok ? "已连接" : "连接断开，重试中…";
  c.className = `conn ${ok ? "ok" : "bad"}`;
}

async function loadState() {
  const d = await (await fetch("api/state")).json();
  S.epoch = d.epoch;
  S.members = d.members || [];
  S.timelines = {};
  S.cards = {};
  S.unread = {};
  $("#wire").replaceChildren();
  $("#corp").textContent = `企业 ${d.corp_id} · 应用 ${d.agent_id}`;
  for (const e of d.events) apply(e, true);
  S.since = d.last;
  setRecCount(d.steps || 0);
  if (S.current && !member(S.current) && !S.timelines[S.current]) S.current = null;
  renderMembers();
  renderChat();
}

async function pollLoop() {
  for (;;) {
    try {
      const r = await fetch(`api/events?since=${S.since}&wait=20&epoch=${encodeURIComponent(S.epoch || "")}`);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const d = await r.json();
      setConn(true);
      if (d.epoch !== S.epoch) { await loadState(); continue; }
      for (const e of d.events) apply(e, false);
      S.since = Math.max(S.since, d.last);
      setRecCount(d.steps || 0);
    } catch (err) {
      setConn(false);
      await sleep(1500);
    }
  }
}

// ---- wiring up --------------------------------------------------------------------------------

function init() {
  $("#composer").addEventListener("submit", (ev) => { ev.preventDefault(); sendText(); });
  $("#input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendText(); }
  });
  $("#pick-image").addEventListener("change", (ev) => sendFile("image", ev.target));
  $("#pick-voice").addEventListener("change", (ev) => sendFile("voice", ev.target));
  $("#btn-link").addEventListener("click", () => { $("#link-form").hidden = !$("#link-form").hidden; });
  $("#btn-link-send").addEventListener("click", async () => {
    if (!S.current) return;
    const url = $("#link-url").value.trim();
    await postJson("api/send", { as: S.current, type: "link", url, title: $("#link-title").value.trim() || url, description: $("#link-desc").value.trim() });
    $("#link-form").hidden = true;
    $("#link-url").value = $("#link-title").value = $("#link-desc").value = "";
  });
  $("#btn-location").addEventListener("click", () => S.current && postJson("api/send", { as: S.current, type: "location", label: "上海市浦东新区世纪大道", x: "31.2304", y: "121.4737" }));
  $("#other-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const userid = $("#other-id").value.trim();
    if (!userid) return;
    const d = await postJson("api/members", { userid });
    if (d.members) { S.members = d.members; $("#other-id").value = ""; selectMember(userid); }
  });
  $("#btn-export").addEventListener("click", () => {
    const a = h("a", { href: "api/transcript", download: "" });
    document.body.append(a);
    a.click();
    a.remove();
  });
  $("#btn-record").addEventListener("click", () => postJson("api/transcript/reset", {}));
  $("#btn-expire").addEventListener("click", () => postJson("api/expire-tokens", {}));
  $("#btn-wire-clear").addEventListener("click", () => $("#wire").replaceChildren());
  $("#wire-current").addEventListener("change", () => filterWire());
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => showTab(t.dataset.tab)));
  $("#customer-form").addEventListener("submit", (ev) => { ev.preventDefault(); openCustomer($("#customer-url").value); });
  // every link in a chat opens in the customer view (the way someone outside the company sees it)
  document.body.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-open]");
    if (!a) return;
    ev.preventDefault();
    openCustomer(a.dataset.open);
  });
  try { S.current = localStorage.getItem("salesbot.member"); } catch (e) { S.current = null; }
  loadState().then(() => { setConn(true); pollLoop(); }).catch(() => { setConn(false); setTimeout(init2, 1500); });
}
function init2() {
  loadState().then(() => { setConn(true); pollLoop(); }).catch(() => { setConn(false); setTimeout(init2, 1500); });
}

document.addEventListener("DOMContentLoaded", init);
