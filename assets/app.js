// picochat page: one state object, small render functions, a reconnecting socket.
// User text only ever reaches the DOM through textContent (never innerHTML);
// links are built as elements, and only for http: and https: URLs.
// Rooms are `#name`; a direct conversation is the room `@name` (the other person).

import { openPicker, suggest, withEmoji } from './emoji-ui.js';
import { attachmentBox, prepared, send as sendImage } from './upload.js';

const $ = (id) => document.getElementById(id);
const STORE = 'picochat.me';
const ROOMS_STORE = 'picochat.rooms';
const PASSWORD_STORE = 'picochat.password';   // sessionStorage: this tab's session only
const SECRET_STORE = 'picochat.secret';       // this browser's own random secret: its names are held for it
const TOKEN_STORE = 'picochat.token';         // sessionStorage: a signed token (--auth token) for this tab
const KEEP_PER_ROOM = 2000;     // messages the page keeps per room for switching back
const PAGE = 50;                // messages one scroll-back page asks for
const ROOM_RE = /^[a-z0-9_-]{1,32}$/;
const TYPING_EVERY = 3000;      // the server forwards one typing notice per 3 s
const TYPING_SHOWN = 6000;      // "ann is typing…" lasts this long after the last one
const READ_EVERY = 1000;        // read markers sent at most once a second per room
let badLink = null;       // a /r/NAME whose NAME no server would accept

const state = {
  me: loadMe(),            // { username, email } from the join screen
  password: sessionStorage.getItem(PASSWORD_STORE), // a server with --auth password
  secret: loadSecret(),
  token: takeToken(),      // --auth token: from the URL fragment or the embedding page
  status: 'connecting',    // connecting | online | offline
  ws: null,
  retry: 0,                // reconnect attempts since the last welcome
  you: null,               // { username, avatar } as the server knows us
  limits: { max_text: 8192, max_message: 16384, max_rooms_per_client: 32, edit_window_ms: 900000, max_upload: 0 },
  attachment: null,        // the image waiting in the composer (upload.js)
  editing: null,           // { room, id } of our own message being edited in the composer
  rooms: new Map(),        // name -> room state, in the order shown (`@name`: a conversation)
  typedAt: new Map(),      // room -> when our last typing notice went
  typingTimer: null,
  current: null,           // the room on screen
  wanted: roomFromPath(),  // a room named in the URL, joined on connect
  newBelow: false,
};

function newRoom(name) {
  return {
    name,
    joined: false,
    pending: false,        // a join was sent (or is due on connect), no welcome yet
    epoch: null,           // id sequence of this room; a new one resets its list
    lastId: 0,             // newest id shown: the `since` of a reconnect
    seen: new Set(),       // ids shown, so a reconnect never duplicates
    messages: [],          // kept items: { kind: 'msg', m } or { kind: 'system', text }
    users: [],             // [{ username, avatar }] (a very busy room lists only some)
    online: 0,
    unread: 0,
    mentioned: false,
    older: true,           // the server may hold messages before the first one kept
    loading: null,         // a history request in flight: 'older' | 'newer' | 'around'
    detached: false,       // the view shows a page around a search result, not the live end
    hit: null,             // the id a search result jumped to
    settings: { topic: '', slow_mode: 0, read_only: false },  // set by moderators
    direct: name.startsWith('@'),  // a conversation with one person, not a room
    read: 0,               // our read marker here (as far as any of our tabs has read)
    readSent: 0,           // when this tab last sent one
    readTimer: null,
    typing: new Map(),     // username -> until when "is typing" shows
    // Who was online when our connection dropped: their joins right after we
    // reconnect are reconnects too, not news.
    returning: new Set(),
  };
}

// A token handed over in the URL fragment (/#token=...) is kept for the tab
// and taken out of the address bar, so it is neither bookmarked nor shared.
function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_STORE, decodeURIComponent(m[1]));
    history.replaceState(history.state, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_STORE);
}

// A token from the page that embeds this one: {type: 'picochat-token', token}.
function tokenFromParent(e) {
  if (e.source !== window.parent || window.parent === window) return;
  if (!e.data || e.data.type !== 'picochat-token' || typeof e.data.token !== 'string') return;
  state.token = e.data.token;
  sessionStorage.setItem(TOKEN_STORE, state.token);
  signInWithToken();
}

// With a token the name is the token's: no join form, straight in.
function signInWithToken() {
  if (!state.token) return;
  state.me = { username: '', email: '', token: true };
  renderScreens();
  if (!state.ws) connect();
}

// 128 random bits, made once per browser. getRandomValues works on plain
// http on a LAN too (randomUUID needs a secure context).
function loadSecret() {
  let s = localStorage.getItem(SECRET_STORE);
  if (!s) {
    s = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem(SECRET_STORE, s);
  }
  return s;
}

function loadMe() {
  try { return JSON.parse(localStorage.getItem(STORE)) || null; } catch { return null; }
}

function loadRooms() {
  try {
    const saved = JSON.parse(localStorage.getItem(ROOMS_STORE));
    return Array.isArray(saved?.rooms) ? saved : null;
  } catch { return null; }
}

function saveRooms() {
  const rooms = [...state.rooms.values()].filter((r) => r.joined).map((r) => r.name);
  localStorage.setItem(ROOMS_STORE, JSON.stringify({ rooms, current: state.current }));
}

function roomFromPath() {
  const m = /^\/r\/([^/]+)$/.exec(location.pathname);
  if (!m) return null;
  let name;
  try { name = decodeURIComponent(m[1]).trim().toLowerCase(); } catch { name = m[1]; }
  if (ROOM_RE.test(name)) return name;
  badLink = name;
  return null;
}

function room(name) {
  if (!state.rooms.has(name)) state.rooms.set(name, newRoom(name));
  return state.rooms.get(name);
}

// How a room is named on screen: `#room`, or `@name` for a conversation.
function label(name) {
  return name.startsWith('@') ? name : `#${name}`;
}

// ---------- rendering ----------

function renderScreens() {
  $('join-screen').hidden = !!state.me;
  $('chat-screen').hidden = !state.me;
  $('leave').hidden = !state.me || !!state.me.token;   // a token's name is the site's
  $('rooms-toggle').hidden = !state.me;
  if (!state.me) {
    const last = loadMe();
    if (last) { $('join-username').value = last.username; $('join-email').value = last.email || ''; }
    $('join-username').focus();
  }
}

function renderStatus() {
  const el = $('status');
  el.dataset.state = state.status;
  $('status-text').textContent =
    state.status === 'online' ? 'Connected' :
    state.status === 'offline' ? 'Offline — reconnecting…' : 'Connecting…';
  $('send').disabled = state.status !== 'online' || !currentRoom()?.joined;
}

function currentRoom() {
  return state.current ? state.rooms.get(state.current) : null;
}

function roomItem(r) {
  const li = document.createElement('li');
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'room-link';
  b.dataset.room = r.name;
  if (r.name === state.current) b.setAttribute('aria-current', 'true');
  const name = document.createElement('span');
  name.className = 'room-name';
  name.textContent = label(r.name);
  b.append(name);
  if (r.unread > 0) {
    const badge = document.createElement('span');
    badge.className = r.mentioned ? 'unread mention' : 'unread';
    badge.textContent = String(r.unread);
    badge.setAttribute('aria-label', `${r.unread} unread`);
    b.append(badge);
  }
  b.addEventListener('click', () => (r.direct ? openDirect(r.name) : switchTo(r.name)));
  const leave = document.createElement('button');
  leave.type = 'button';
  leave.className = 'room-leave';
  leave.textContent = '×';
  leave.title = r.direct ? `Close ${label(r.name)}` : `Leave ${label(r.name)}`;
  leave.setAttribute('aria-label', leave.title);
  leave.addEventListener('click', () => leaveRoom(r.name));
  li.append(b, leave);
  return li;
}

function renderRooms() {
  const all = [...state.rooms.values()];
  $('room-list').replaceChildren(...all.filter((r) => r.joined && !r.direct).map(roomItem));
  // Conversations show once they have a message or were opened, joined or not.
  const direct = all.filter((r) => r.direct && (r.joined || r.messages.length > 0));
  $('dm-list').replaceChildren(...direct.map(roomItem));
  $('dm-empty').hidden = direct.length > 0;
  const r = currentRoom();
  $('room-title').textContent = r ? label(r.name) : '';
  // On a phone the drawer's button names the room on screen.
  $('rooms-toggle').textContent = r ? `${label(r.name)} ▾` : 'Rooms ▾';
  $('rooms-toggle').setAttribute('aria-label', r ? `Rooms (now in ${label(r.name)})` : 'Rooms');
  renderTitle();
}

function renderUsers() {
  const r = currentRoom();
  const users = r ? r.users : [];
  $('online-count').textContent = String(Math.max(r ? r.online : 0, users.length));
  $('user-list').replaceChildren(...users.map((u) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'user-name';
    name.textContent = u.username;
    li.append(avatar(u, true), name);
    if (u.verified) li.append(verifiedMark());
    if (state.you && u.username !== state.you.username) {
      const dm = document.createElement('button');
      dm.type = 'button';
      dm.className = 'link message-user';
      dm.textContent = 'Message';
      dm.title = `Write to ${u.username} directly`;
      dm.setAttribute('aria-label', `Message ${u.username}`);
      dm.addEventListener('click', () => openDirect(`@${u.username}`));
      li.append(dm);
    }
    return li;
  }));
}

function totalUnread() {
  let n = 0;
  for (const r of state.rooms.values()) n += r.unread;
  return n;
}

function renderTitle() {
  const n = totalUnread();
  const where = state.current ? `${label(state.current)} · picochat` : 'picochat';
  document.title = n > 0 ? `(${n}) ${where}` : where;
}

function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : [...(parts[0] || '?')].slice(0, 2).join('');
  return letters.toUpperCase();
}

// Coloured initials, covered by the Gravatar picture only once it has loaded:
// offline (or with no Gravatar) the initials stay and no broken image shows.
function avatar(user, small = false) {
  const box = document.createElement('span');
  box.className = small ? 'avatar small' : 'avatar';
  box.style.setProperty('--hue', String(hue(user.username)));
  box.setAttribute('aria-hidden', 'true');
  box.textContent = initials(user.username);
  if (user.avatar && /^[0-9a-f]{64}$/.test(user.avatar)) {
    const img = new Image();
    img.alt = '';
    img.referrerPolicy = 'no-referrer';
    img.addEventListener('load', () => box.append(img));
    img.src = `https://www.gravatar.com/avatar/${user.avatar}?s=72&d=404`;
  }
  return box;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// `@name` of the reader, not inside a longer name.
function mentionRe() {
  if (!state.you) return null;
  return new RegExp(`(^|[^\\p{L}\\p{N}_])@${escapeRe(state.you.username)}(?![\\p{L}\\p{N}_])`, 'iu');
}

function mentionsMe(m) {
  const re = mentionRe();
  return !!re && !isMine(m) && re.test(m.message);
}

// Plain text with http(s) links made clickable; everything else stays text.
function linkified(text) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url;
    try { url = new URL(m[0]); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    frag.append(document.createTextNode(text.slice(at, m.index)));
    const a = document.createElement('a');
    a.href = url.href;
    a.textContent = m[0];
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    frag.append(a);
    at = m.index + m[0].length;
  }
  frag.append(document.createTextNode(text.slice(at)));
  return frag;
}

function isMine(m) {
  return state.you && m.username === state.you.username && (m.avatar || null) === (state.you.avatar || null);
}

function nearBottom() {
  const list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
}

function appendItem(li) {
  const list = $('messages');
  const stick = nearBottom();
  list.append(li);
  if (stick) {
    list.scrollTop = list.scrollHeight;
  } else {
    state.newBelow = true;
    $('new-below').hidden = false;
  }
}

function messageItem(m) {
  const li = document.createElement('li');
  li.className = isMine(m) ? 'msg mine' : 'msg';
  if (mentionsMe(m)) li.classList.add('mention');
  li.dataset.id = String(m.id);
  const body = document.createElement('div');
  body.className = 'body';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = m.username;
  const when = document.createElement('time');
  const date = new Date(m.time);
  when.dateTime = date.toISOString();
  when.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  meta.append(name);
  if (m.verified) meta.append(verifiedMark());
  if (m.by === 'admin') {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = 'moderator';
    meta.append(badge);
  }
  meta.append(when);
  if (m.edited) meta.append(editedMark());
  if (isMine(m)) meta.append(ownActions(m));
  const text = document.createElement('div');
  text.className = 'text';
  text.append(linkified(m.message));
  body.append(meta);
  if (m.attachment) body.append(picture(m));
  if (m.message || !m.attachment) body.append(text);
  body.append(reactionsRow(m));
  li.append(avatar(m), body);
  return li;
}

// An image a message carries, at a bounded size (its width and height are
// known, so nothing jumps while it loads); a click opens it whole.
function picture(m) {
  const a = m.attachment;
  const link = document.createElement('a');
  link.className = 'picture';
  if (typeof a.url === 'string' && a.url.startsWith('/u/')) link.href = a.url;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  const img = new Image();
  img.loading = 'lazy';
  img.alt = m.message || 'image';
  img.width = a.width;
  img.height = a.height;
  img.addEventListener('error', () => {
    const gone = document.createElement('span');
    gone.className = 'expired';
    gone.textContent = 'image expired';
    link.replaceWith(gone);
  });
  if (link.href) img.src = a.url;
  link.append(img);
  return link;
}

// A message's reactions as chips with counts (ours highlighted; a click
// toggles ours), and a button that opens the picker.
function reactionsRow(m) {
  const row = document.createElement('div');
  row.className = 'reactions';
  const me = state.you?.username;
  for (const [emoji, names] of Object.entries(m.reactions || {})) {
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = names.includes(me) ? 'chip mine' : 'chip';
    chip.textContent = `${emoji} ${names.length}`;
    chip.title = names.join(', ');
    chip.setAttribute('aria-pressed', String(names.includes(me)));
    chip.setAttribute('aria-label', `${emoji} ${names.length}: ${names.join(', ')}`);
    chip.addEventListener('click', () => react(m, emoji));
    row.append(chip);
  }
  const add = document.createElement('button');
  add.type = 'button';
  add.className = 'chip add-reaction';
  add.textContent = '☺+';
  add.title = 'Add a reaction';
  add.setAttribute('aria-label', 'Add a reaction');
  add.addEventListener('click', () => openPicker(row, (emoji) => react(m, emoji)));
  row.append(add);
  return row;
}

function react(m, emoji) {
  send({ type: 'react', room: m.room, id: m.id, emoji });
}

// A reaction record: what it changes in the message's reactions (the
// server's rule: names in the order they reacted, an unused emoji left out).
function reacted(old, c) {
  const all = { ...(old || {}) };
  const names = (all[c.emoji] || []).filter((n) => n !== c.username);
  if (c.on) names.push(c.username);
  if (names.length) all[c.emoji] = names;
  else delete all[c.emoji];
  return Object.keys(all).length ? all : undefined;
}

// The name came from a token the site signed (--auth token).
function verifiedMark() {
  const mark = document.createElement('span');
  mark.className = 'verified';
  mark.textContent = '✓';
  mark.title = 'Verified: this name comes from the site you signed in to';
  mark.setAttribute('aria-label', 'verified');
  return mark;
}

function editedMark() {
  const mark = document.createElement('span');
  mark.className = 'edited';
  mark.textContent = '(edited)';
  return mark;
}

// Edit (while the server's edit window lasts) and delete, on our own messages.
function ownActions(m) {
  const span = document.createElement('span');
  span.className = 'actions';
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.className = 'link edit';
  edit.textContent = 'Edit';
  edit.title = 'Edit this message';
  edit.addEventListener('click', () => startEdit(m));
  const del = document.createElement('button');
  del.type = 'button';
  del.className = 'link delete';
  del.textContent = 'Delete';
  del.title = 'Delete this message for everyone';
  del.addEventListener('click', () => {
    if (confirm('Delete this message for everyone?')) send({ type: 'delete', room: m.room, id: m.id });
  });
  if (Date.now() - m.time < state.limits.edit_window_ms) span.append(edit);
  span.append(del);
  return span;
}

function startEdit(m) {
  state.editing = { room: m.room, id: m.id };
  $('text').value = m.message;
  $('composer').classList.add('editing');
  hint('Editing your message: Enter saves, Esc cancels.');
  autosize();
  $('text').focus();
}

function stopEdit() {
  if (!state.editing) return;
  state.editing = null;
  $('text').value = '';
  $('composer').classList.remove('editing');
  autosize();
  hint('');
}

// An edit or a delete the server committed: applied to the kept message and
// to the one on screen (if either is still here).
function applyChange(r, c) {
  r.lastId = Math.max(r.lastId, c.id);
  if (r.seen.has(c.id)) return;
  r.seen.add(c.id);
  const at = r.messages.findIndex((x) => x.kind === 'msg' && x.m.id === c.target);
  if (at < 0) return;
  const old = r.messages[at].m;
  if (c.type === 'delete') r.messages.splice(at, 1);
  else if (c.type === 'react') r.messages[at] = { kind: 'msg', m: { ...old, reactions: reacted(old.reactions, c) } };
  else r.messages[at] = { kind: 'msg', m: { ...old, message: c.message, edited: true } };
  if (c.type !== 'react' && state.editing && state.editing.room === r.name && state.editing.id === c.target) stopEdit();
  if (r.name !== state.current) return;
  const li = $('messages').querySelector(`li.msg[data-id="${c.target}"]`);
  if (!li) return;
  if (c.type === 'delete') li.remove();
  else li.replaceWith(messageItem(r.messages[at].m));
}

// One record of a room's log: a message, or a change to one.
function addRecord(r, m, live) {
  if (m.type === 'edit' || m.type === 'delete' || m.type === 'react') applyChange(r, m);
  else addMessage(r, m, live);
}

function systemItem(text) {
  const li = document.createElement('li');
  li.className = 'system';
  li.textContent = text;
  return li;
}

function keep(r, item) {
  r.messages.push(item);
  if (r.messages.length > KEEP_PER_ROOM) {
    r.messages.splice(0, r.messages.length - KEEP_PER_ROOM);
    r.older = true;
  }
}

function addMessage(r, m, live) {
  if (r.seen.has(m.id)) return;
  r.seen.add(m.id);
  r.lastId = Math.max(r.lastId, m.id);
  keep(r, { kind: 'msg', m });
  const onScreen = r.name === state.current;
  if (onScreen && !r.detached) appendItem(messageItem(m));
  if (r.typing.delete(m.username)) renderTyping();
  if (!live || isMine(m)) return;
  // A direct message counts as a mention: it is for us.
  const mention = r.direct || mentionsMe(m);
  if (!onScreen || document.hidden) {
    r.unread += 1;
    if (mention) r.mentioned = true;
    renderRooms();
  } else {
    markRead(r);
  }
  if (mention && document.hidden) notify(r, m);
}

// ---------- read markers and typing ----------

// Unread: kept messages of others after our read marker.
function countUnread(r) {
  return r.messages.filter((it) => it.kind === 'msg' && it.m.id > r.read && !isMine(it.m)).length;
}

// The room is on screen and seen: our marker moves to its newest message
// (sent at most once a second; the server keeps it for our other tabs and devices).
function markRead(r) {
  if (!r || r.name !== state.current || document.hidden || r.detached || !r.joined) return;
  const last = r.messages.findLast((it) => it.kind === 'msg');
  if (!last || last.m.id <= r.read) return;
  r.read = last.m.id;
  if (r.readTimer) return;
  const wait = Math.max(0, READ_EVERY - (Date.now() - r.readSent));
  r.readTimer = setTimeout(() => {
    r.readTimer = null;
    r.readSent = Date.now();
    send({ type: 'read', room: r.name, id: r.read });
  }, wait);
}

// Another tab or device of ours read further.
function onRead(m) {
  const r = state.rooms.get(m.room);
  if (!r || m.id <= r.read) return;
  r.read = m.id;
  r.unread = countUnread(r);
  if (r.unread === 0) r.mentioned = false;
  renderRooms();
}

function onTyping(m) {
  const r = m.room.startsWith('@') ? room(m.room) : state.rooms.get(m.room);
  if (!r || m.username === state.you?.username) return;
  r.typing.set(m.username, Date.now() + TYPING_SHOWN);
  renderTyping();
}

// "ann is typing…" under the messages of the room on screen, while it lasts.
function renderTyping() {
  const r = currentRoom();
  const now = Date.now();
  let names = [];
  for (const x of state.rooms.values()) {
    for (const [name, until] of x.typing) if (until <= now) x.typing.delete(name);
  }
  if (r) names = [...r.typing.keys()];
  const el = $('typing');
  el.textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    // The server forwards at most five typists per room at a time.
    : names.length < 5 ? `${names.length} people are typing…` : 'Several people are typing…';
  clearTimeout(state.typingTimer);
  if ([...state.rooms.values()].some((x) => x.typing.size > 0)) state.typingTimer = setTimeout(renderTyping, 1000);
}

// We type: the room hears it, at most once per 3 s.
function typed() {
  const r = currentRoom();
  if (!r || !r.joined || state.editing || !$('text').value.trim()) return;
  const now = Date.now();
  if (now - (state.typedAt.get(r.name) || 0) < TYPING_EVERY) return;
  state.typedAt.set(r.name, now);
  send({ type: 'typing', room: r.name });
}

// The room on screen as its moderators set it: topic, read-only, slow mode.
function renderSettings() {
  const r = currentRoom();
  const s = r ? r.settings : { topic: '', slow_mode: 0, read_only: false };
  $('topic').textContent = s.topic;
  $('topic').hidden = !s.topic;
  $('text').disabled = s.read_only;
  $('text').placeholder = s.read_only ? 'Only moderators post in this room.' : 'Write a message…';
  if (s.slow_mode > 0) hint(`Slow mode: one message every ${s.slow_mode} s in this room.`);
}

function setSettings(r, m) {
  r.settings = { topic: m.topic || '', slow_mode: m.slow_mode || 0, read_only: !!m.read_only };
  if (r.name === state.current) renderSettings();
}

function addSystem(r, text) {
  keep(r, { kind: 'system', text });
  if (r.name === state.current && !r.detached) appendItem(systemItem(text));
}

// ---------- scrollback and search ----------

function shownIds() {
  return [...$('messages').querySelectorAll('li.msg')].map((li) => Number(li.dataset.id));
}

// The line at the top of the list: "loading…" while a page comes, "start of
// #room" at the beginning. Adding or removing it never moves what is on screen.
function topLine(text, cls) {
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  list.querySelector('li.loading, li.start')?.remove();
  if (text) {
    const li = systemItem(text);
    li.classList.add(cls);
    list.prepend(li);
  }
  list.scrollTop = list.scrollHeight - fromBottom;
}

// Scrolled to the top (or a list too short to scroll): the previous page.
function loadOlder() {
  const r = currentRoom();
  if (!r || !r.joined || r.loading || !r.older) return;
  const list = $('messages');
  if (list.scrollTop > 80 && list.scrollHeight > list.clientHeight) return;
  const first = shownIds()[0];
  r.loading = 'older';
  topLine('loading…', 'loading');
  const ask = { type: 'history', room: r.name, limit: PAGE };
  if (first !== undefined) ask.before = first;
  send(ask);
}

// A view detached from the live end, scrolled to its bottom: the next page.
function loadNewer() {
  const r = currentRoom();
  if (!r || !r.detached || r.loading || !nearBottom()) return;
  const ids = shownIds();
  r.loading = 'newer';
  send({ type: 'history', room: r.name, after: ids[ids.length - 1] ?? 0, limit: PAGE });
}

function jumpTo(name, id) {
  const r = state.rooms.get(name);
  if (!r || !r.joined) return;
  if (state.current !== name) switchTo(name);
  r.hit = id;
  r.loading = 'around';
  send({ type: 'history', room: name, around: id, limit: PAGE });
}

function jumpToLatest() {
  const r = currentRoom();
  if (!r) return;
  r.detached = false;
  r.hit = null;
  switchTo(r.name, 'none');
}

function onHistory(m) {
  const r = state.rooms.get(m.room);
  if (!r) return;
  const kind = r.loading;
  r.loading = null;
  if (m.room !== state.current || !kind) return;
  const list = $('messages');
  const shown = new Set(shownIds());
  const fresh = m.messages.filter((x) => !shown.has(x.id));
  if (kind === 'older') {
    topLine('');
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.prepend(...fresh.map(messageItem));
    if (!r.detached) {
      const kept = fresh.filter((x) => !r.seen.has(x.id));
      for (const x of kept) r.seen.add(x.id);
      r.messages.unshift(...kept.map((x) => ({ kind: 'msg', m: x })));
    }
    r.older = m.older;
    if (!m.older) topLine(`start of ${label(r.name)}`, 'start');
    // The message that was on screen stays where it was.
    list.scrollTop = list.scrollHeight - fromBottom;
    setTimeout(loadOlder, 0);
  } else if (kind === 'around') {
    r.detached = true;
    list.replaceChildren(...m.messages.map(messageItem));
    r.older = m.older;
    if (!m.older) topLine(`start of #${r.name}`, 'start');
    const hit = list.querySelector(`li.msg[data-id="${r.hit}"]`);
    if (hit) {
      hit.classList.add('hit');
      hit.scrollIntoView({ block: 'center' });
    }
    $('jump-latest').hidden = false;
    if (!m.newer) jumpToLatest();
  } else if (kind === 'newer') {
    list.append(...fresh.map(messageItem));
    if (!m.newer) jumpToLatest();
  }
}

// `text` with every case-insensitive occurrence of `q` marked.
function highlighted(text, q) {
  const frag = document.createDocumentFragment();
  const lower = text.toLowerCase();
  const needle = q.toLowerCase();
  let at = 0;
  if (lower.length === text.length && needle) {
    for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, i + needle.length)) {
      frag.append(document.createTextNode(text.slice(at, i)));
      const mark = document.createElement('mark');
      mark.textContent = text.slice(i, i + needle.length);
      frag.append(mark);
      at = i + needle.length;
    }
  }
  frag.append(document.createTextNode(text.slice(at)));
  return frag;
}

function openSearch(open) {
  $('search-box').hidden = !open;
  $('search-open').hidden = open;
  document.querySelector('header.bar').classList.toggle('searching', open);
  if (open) {
    $('search-q').focus();
  } else {
    $('search-panel').hidden = true;
    state.search = null;
  }
}

function startSearch(before) {
  const r = currentRoom();
  const q = $('search-q').value;
  if (!r) return;
  if ([...q].length < 2) {
    $('search-panel').hidden = false;
    $('search-status').textContent = 'Type at least 2 characters.';
    return;
  }
  if (before === undefined) {
    state.search = { room: r.name, q, last: null };
    $('search-results').replaceChildren();
  }
  $('search-panel').hidden = false;
  $('search-more').hidden = true;
  $('search-status').textContent = 'Searching…';
  const ask = { type: 'search', room: r.name, q, limit: 20 };
  if (before !== undefined) ask.before = before;
  send(ask);
}

function onSearch(m) {
  const s = state.search;
  if (!s || s.room !== m.room || s.q !== m.q) return;
  for (const x of m.messages) {
    const li = document.createElement('li');
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = `${x.username} · ${new Date(x.time).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}`;
    const text = document.createElement('div');
    text.append(highlighted(x.message, m.q));
    li.append(meta, text);
    li.tabIndex = 0;
    const go = () => {
      $('search-panel').hidden = true;
      jumpTo(m.room, x.id);
    };
    li.addEventListener('click', go);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    $('search-results').append(li);
    s.last = x.id;
  }
  const n = $('search-results').children.length;
  $('search-status').textContent = n === 0 ? `No message in #${m.room} contains “${m.q}”.` : `${n} message${n === 1 ? '' : 's'} with “${m.q}”${m.older ? '' : ' (all)'}`;
  $('search-more').hidden = !m.older || s.last === null;
}

// Shows a room: its kept messages, its people, its name in the address bar
// (`how`: 'push' a history entry, 'replace' the current one, or 'none').
function switchTo(name, how = 'push') {
  const r = room(name);
  if (!r.joined && r.direct) { openDirect(name); return; }
  state.current = name;
  r.unread = 0;
  r.mentioned = false;
  const list = $('messages');
  list.replaceChildren(...r.messages.map((it) => (it.kind === 'msg' ? messageItem(it.m) : systemItem(it.text))));
  r.detached = false;
  if (!r.older) topLine(`start of ${label(r.name)}`, 'start');
  list.scrollTop = list.scrollHeight;
  renderSettings();
  renderTyping();
  markRead(r);
  state.newBelow = false;
  $('new-below').hidden = true;
  $('jump-latest').hidden = true;
  $('search-open').hidden = !$('search-box').hidden;
  setTimeout(loadOlder, 0);
  showNotice('');
  const path = r.direct ? '/' : `/r/${encodeURIComponent(name)}`;
  if (how !== 'none' && location.pathname !== path) {
    if (how === 'push') history.pushState({ room: name }, '', path);
    else history.replaceState({ room: name }, '', path);
  }
  saveRooms();
  renderRooms();
  renderUsers();
  renderStatus();
  closeDrawer();
}

function notify(r, m) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const title = r.direct ? `${m.username} (direct message)` : `${m.username} in #${r.name}`;
    const n = new Notification(title, { body: m.message.slice(0, 200), tag: `picochat-${r.name}` });
    n.onclick = () => { window.focus(); if (r.direct) openDirect(r.name); else switchTo(r.name); n.close(); };
  } catch {
    // Some browsers only allow notifications from a service worker: the title still counts.
  }
}

function renderNotifyButton() {
  const b = $('notify');
  b.hidden = !('Notification' in window) || Notification.permission !== 'default' || !state.me;
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

const DEFAULT_HINT = 'Enter sends, Shift+Enter starts a new line.';

function hint(text, bad = false) {
  $('hint').textContent = text || DEFAULT_HINT;
  $('hint').classList.toggle('bad', bad);
}

// ---------- the connection ----------

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

// A join as this page sends every one: name, e-mail, and the password if the server asked for one.
function baseJoin() {
  const join = { type: 'join', username: state.me.username, secret: state.secret };
  if (state.me.email) join.email = state.me.email;
  if (state.password) join.password = state.password;
  if (state.token) join.token = state.token;
  return join;
}

function joinFrame(name) {
  const r = state.rooms.get(name);
  const join = { ...baseJoin(), room: name };
  if (r && r.epoch !== null) { join.since = r.lastId; join.epoch = r.epoch; }
  return join;
}

// The server refused the join: back to the join screen, saying why (no
// reconnect until the form is sent again).
function refusedJoin(why, focus) {
  state.me = null;
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000, 'join refused');
  renderScreens();
  $('join-error').textContent = why;
  $(focus).focus();
}

// The server wants its password (or refuses this address for a while).
function needPassword(why) {
  state.password = null;
  sessionStorage.removeItem(PASSWORD_STORE);
  $('join-password-row').hidden = false;
  refusedJoin(why, 'join-password');
}

// The rooms to be in after (re)connecting: those joined, the one in the URL,
// or those remembered from the last visit; none means the server's default room.
function roomsToJoin() {
  const names = [...state.rooms.values()].filter((r) => r.joined || r.pending).map((r) => r.name);
  if (state.wanted && !names.includes(state.wanted)) names.push(state.wanted);
  return names;
}

function connect() {
  if (!state.me) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/ws`);
  state.ws = ws;
  state.status = 'connecting';
  renderStatus();
  ws.addEventListener('open', () => {
    // What the connection negotiated (permessage-deflate), for a look in the inspector.
    document.documentElement.dataset.wsExtensions = ws.extensions;
    const names = roomsToJoin();
    if (names.length === 0) {
      // The server's default room: the welcome names it.
      ws.send(JSON.stringify(baseJoin()));
    }
    for (const name of names) ws.send(JSON.stringify(joinFrame(name)));
  });
  ws.addEventListener('message', (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    onServerMessage(m);
  });
  ws.addEventListener('close', (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.status = 'offline';
    for (const r of state.rooms.values()) {
      r.returning = new Set(r.users.map((u) => u.username));
      r.loading = null;   // a page asked on the old connection never comes
    }
    renderStatus();
    if (!state.me) return;
    if (e.code === 1008 && e.reason.startsWith('banned')) {
      // Banned (the name or this address): trying again would only be refused.
      state.me = null;
      renderScreens();
      $('join-error').textContent = 'A moderator has banned you here.';
      return;
    }
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... at most 15 s.
    const delay = Math.min(15000, 500 * 2 ** state.retry) * (0.75 + Math.random() / 2);
    state.retry += 1;
    if (e.code === 1008) hint('Disconnected by the server: ' + (e.reason || 'policy'), true);
    setTimeout(connect, delay);
  });
}

function onWelcome(m) {
  if (m.room.startsWith('@')) {
    // `@bob` asked for, `@Bob` answered: the name as its holder shows it.
    for (const x of [...state.rooms.values()]) {
      if (x.direct && !x.joined && x.name !== m.room && x.name.toLowerCase() === m.room.toLowerCase()) {
        state.rooms.delete(x.name);
        if (state.wanted === x.name) state.wanted = m.room;
      }
    }
  }
  const r = room(m.room);
  if (r.epoch !== null && m.epoch !== r.epoch) {
    // A different id sequence (the server started afresh): start this room over.
    r.messages = [];
    r.older = true;
    r.detached = false;
    r.seen.clear();
    r.lastId = 0;
    if (r.name === state.current) $('messages').replaceChildren();
  }
  const first = r.epoch === null;
  r.epoch = m.epoch;
  r.joined = true;
  r.pending = false;
  r.users = m.users;
  r.online = m.online ?? m.users.length;
  state.retry = 0;
  state.you = m.you;
  state.limits = m.limits;
  $('attach').hidden = !m.limits.max_upload;
  // --auth: images are served only with this key (a cookie for /u/ alone).
  if (m.files_key) {
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `picochat_files=${m.files_key}; path=/u; SameSite=Strict${secure}`;
  }
  state.status = 'online';
  setTimeout(() => r.returning.clear(), 30000);
  for (const msg of m.history) addRecord(r, msg, !first);
  // Unread counts come from the read marker our tabs and devices share.
  if (typeof m.read === 'number') {
    r.read = Math.max(r.read, m.read);
    if (m.room !== state.current || document.hidden) {
      r.unread = countUnread(r);
      r.mentioned = r.mentioned && r.unread > 0;
    }
  }
  setSettings(r, m);
  if (state.current === null || state.current === m.room || (state.wanted === m.room)) {
    if (state.wanted === m.room) state.wanted = null;
    switchTo(m.room, 'replace');
  } else {
    saveRooms();
    renderRooms();
  }
  if (m.truncated && !first && r.name === state.current) showNotice('Some messages sent while you were away are no longer available.');
  renderStatus();
  renderNotifyButton();
  checkLength();
}

function onServerMessage(m) {
  switch (m.type) {
    case 'welcome':
      onWelcome(m);
      break;
    case 'history':
      onHistory(m);
      break;
    case 'search':
      onSearch(m);
      break;
    case 'message':
    case 'edit':
    case 'delete':
    case 'react':
      // A conversation's records come whether we opened it or not.
      if (m.room && (state.rooms.has(m.room) || m.room.startsWith('@'))) addRecord(room(m.room), m, true);
      break;
    case 'typing':
      onTyping(m);
      break;
    case 'read':
      onRead(m);
      break;
    case 'join': {
      const r = state.rooms.get(m.room);
      if (!r) break;
      r.online = m.online;
      if (!r.users.some((u) => u.username === m.username)) {
        r.users = [...r.users, { username: m.username, avatar: m.avatar, verified: m.verified }]
          .sort((a, b) => (a.username < b.username ? -1 : 1));
      }
      if (!r.returning.delete(m.username)) addSystem(r, `${m.username} joined`);
      if (r.name === state.current) renderUsers();
      break;
    }
    case 'leave': {
      const r = state.rooms.get(m.room);
      if (!r) break;
      r.online = m.online;
      r.users = r.users.filter((u) => u.username !== m.username);
      addSystem(r, `${m.username} left`);
      if (r.name === state.current) renderUsers();
      break;
    }
    case 'left':
      break;
    case 'room':
      if (state.rooms.has(m.room)) setSettings(state.rooms.get(m.room), m);
      break;
    case 'error':
      if (m.room && state.rooms.has(m.room)) state.rooms.get(m.room).loading = null;
      if (m.code === 'name_taken' && ![...state.rooms.values()].some((r) => r.joined)) {
        refusedJoin('That name is someone else\'s here: please choose another.', 'join-username');
        $('join-username').select();
      } else if (m.code === 'bad_token') {
        state.token = null;
        sessionStorage.removeItem(TOKEN_STORE);
        refusedJoin('This chat is entered from its site: your sign-in link is missing, expired or not valid. Open the chat from the site again.', 'join-username');
      } else if (m.code === 'forbidden_room' && m.room) {
        const r = state.rooms.get(m.room);
        if (r && !r.joined) state.rooms.delete(m.room);
        if (state.wanted === m.room) state.wanted = null;
        $('room-error').textContent = `Your sign-in does not include #${m.room}.`;
        if (![...state.rooms.values()].some((x) => x.joined || x.pending) && !state.triedDefault) {
          state.triedDefault = true;   // the server's default room, once
          send(baseJoin());
        }
        renderRooms();
      } else if (['no_such_user', 'needs_identity'].includes(m.code) && m.room) {
        const r = state.rooms.get(m.room);
        if (r && !r.joined && r.messages.length === 0) state.rooms.delete(m.room);
        else if (r) r.pending = false;
        if (state.wanted === m.room) state.wanted = null;
        $('room-error').textContent = m.code === 'no_such_user'
          ? `Nobody is called “${m.room.slice(1)}” here (now or lately).`
          : 'Direct messages need a name held by this page (or a sign-in).';
        renderRooms();
      } else if (m.code === 'banned') {
        refusedJoin('A moderator has banned this name here.', 'join-username');
      } else if (m.code === 'bad_password') {
        needPassword(state.password ? 'Wrong password.' : 'This chat needs its password.');
      } else if (m.code === 'rate_limited' && ![...state.rooms.values()].some((r) => r.joined)) {
        // Refused before any join: too many wrong passwords from this address.
        needPassword('Too many wrong passwords from here: try again in a minute.');
      } else if (['bad_room', 'room_limit'].includes(m.code) && (m.room || state.wanted)) {
        // About the room just asked for (a name the server could not read has no `room`).
        const name = m.room || state.wanted;
        const r = state.rooms.get(name);
        if (r && !r.joined) state.rooms.delete(name);
        else if (r) r.pending = false;
        if (state.wanted === name) state.wanted = null;
        $('room-error').textContent = m.code === 'room_limit'
          ? 'You are in as many rooms as this server allows (or it has no room for more).'
          : `This server has no room called “${name}”.`;
        const left = [...state.rooms.values()].some((x) => x.joined || x.pending);
        if (!left && state.me) {
          // Nowhere to be (a link to a room that does not exist): the server's default room.
          send(baseJoin());
        }
        renderRooms();
      } else {
        hint(m.message || m.code, true);
      }
      break;
  }
}

// ---------- rooms ----------

// A conversation with `@name`: shown at once if opened, else joined (its welcome shows it).
function openDirect(raw) {
  const name = `@${raw.trim().replace(/^@/, '').trim()}`;
  $('room-error').textContent = '';
  if (name.length < 2) return false;
  const known = [...state.rooms.values()].find((r) => r.direct && r.name.toLowerCase() === name.toLowerCase());
  if (known && known.joined) { switchTo(known.name); return true; }
  const target = known ? known.name : name;
  state.wanted = target;
  room(target).pending = true;
  send(joinFrame(target));
  return true;
}

function joinRoom(raw) {
  if (raw.trim().startsWith('@')) return openDirect(raw);
  const name = raw.trim().toLowerCase().replace(/^#/, '');
  $('room-error').textContent = '';
  if (!ROOM_RE.test(name)) {
    $('room-error').textContent = 'Room names are 1 to 32 of a–z, 0–9, - and _.';
    return false;
  }
  const r = state.rooms.get(name);
  if (r && r.joined) { switchTo(name); return true; }
  state.wanted = name;
  room(name).pending = true;
  send(joinFrame(name));
  return true;
}

function leaveRoom(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  if (r.joined) send({ type: 'leave', room: name });
  state.rooms.delete(name);
  if (state.current === name) {
    state.current = null;
    const next = [...state.rooms.values()].find((x) => x.joined);
    if (next) {
      switchTo(next.name);
    } else {
      $('messages').replaceChildren();
      history.pushState({}, '', '/');
      saveRooms();
      renderRooms();
      renderUsers();
      renderStatus();
    }
  } else {
    saveRooms();
    renderRooms();
  }
}

async function offerRooms() {
  try {
    const res = await fetch('/api/rooms', { cache: 'no-store' });
    const body = await res.json();
    $('room-options').replaceChildren(...body.rooms.map((r) => {
      const o = document.createElement('option');
      o.value = r.room;
      o.label = `${r.online} online`;
      return o;
    }));
  } catch {
    // Suggestions only: typing a name still works.
  }
}

function closeDrawer() {
  $('rooms').classList.remove('open');
  $('rooms-toggle').setAttribute('aria-expanded', 'false');
}

// ---------- input ----------

const encoder = new TextEncoder();

// Refuses, before sending, what the server would refuse.
function checkLength() {
  const text = $('text').value;
  const bytes = encoder.encode(text).length;
  const frame = encoder.encode(JSON.stringify({ type: 'message', room: state.current || '', message: text })).length;
  if (bytes > state.limits.max_text || frame > state.limits.max_message) {
    hint(`Too long: ${bytes} of ${state.limits.max_text} bytes allowed.`, true);
    return false;
  }
  if ($('hint').textContent.startsWith('Too long')) hint('');
  return true;
}

async function sendPicture(caption) {
  const blob = state.attachment.take();
  if (blob.size > state.limits.max_upload) {
    hint(`This image is too large: ${Math.round(blob.size / 1024)} KB of ${Math.round(state.limits.max_upload / 1024)} KB allowed.`, true);
    return;
  }
  $('text').value = '';
  autosize();
  const bar = $('upload-progress');
  bar.value = 0;
  bar.hidden = false;
  await sendImage(state.ws, { type: 'upload', room: state.current, message: caption }, blob, (f) => {
    bar.value = f;
    if (f >= 1) setTimeout(() => { bar.hidden = true; }, 300);
  });
}

// An image chosen, pasted or dropped: prepared (downsized if large) and shown before sending.
async function attach(file) {
  if (!file || state.limits.max_upload === 0) return;
  try {
    state.attachment.set(await prepared(file));
    hint('Enter sends the image, with your text as its caption.');
    $('text').focus();
  } catch (e) {
    hint(e.message, true);
  }
}

function sendMessage() {
  const text = $('text').value;
  if (state.attachment.get() && currentRoom()?.joined && state.ws?.readyState === WebSocket.OPEN && !state.editing) {
    if (checkLength()) sendPicture(withEmoji(text));
    return;
  }
  if (!text.trim() || !checkLength()) return;
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !currentRoom()?.joined) {
    hint('Not connected yet — your message is kept here.', true);
    return;
  }
  if (state.editing) {
    send({ type: 'edit', room: state.editing.room, id: state.editing.id, message: withEmoji(text) });
    stopEdit();
    return;
  }
  send({ type: 'message', room: state.current, message: withEmoji(text) });
  $('text').value = '';
  autosize();
  hint('');
}

function autosize() {
  const t = $('text');
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

function wire() {
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const username = $('join-username').value.trim();
    const email = $('join-email').value.trim();
    if (!username || [...username].length > 32) {
      $('join-error').textContent = 'Please enter a name of 1 to 32 characters.';
      return;
    }
    if (!$('join-password-row').hidden) {
      state.password = $('join-password').value;
      sessionStorage.setItem(PASSWORD_STORE, state.password);
    }
    $('join-error').textContent = '';
    state.me = { username, email };
    localStorage.setItem(STORE, JSON.stringify(state.me));
    renderScreens();
    connect();
    $('text').focus();
  });
  $('leave').addEventListener('click', () => {
    state.me = null;
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, 'changing name');
    $('messages').replaceChildren();
    // The rooms stay remembered; they are joined again under the new name.
    const names = [...state.rooms.values()].filter((r) => r.joined).map((r) => r.name);
    state.wanted = state.current;
    state.rooms.clear();
    for (const name of names) room(name).pending = true;
    state.current = null;
    renderScreens();
    renderRooms();
  });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); sendMessage(); });
  state.attachment = attachmentBox($('attachment'), () => {});
  $('attach').addEventListener('click', () => $('attach-file').click());
  $('attach-file').addEventListener('change', (e) => { attach(e.target.files[0]); e.target.value = ''; });
  $('text').addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
    if (file) { e.preventDefault(); attach(file); }
  });
  $('chat-screen').addEventListener('dragover', (e) => {
    if ([...(e.dataTransfer?.items || [])].some((i) => i.kind === 'file')) e.preventDefault();
  });
  $('chat-screen').addEventListener('drop', (e) => {
    const file = [...(e.dataTransfer?.files || [])].find((f) => f.type.startsWith('image/'));
    if (file) { e.preventDefault(); attach(file); }
  });
  suggest($('text'), $('emoji-suggest'));
  $('text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendMessage(); }
    if (e.key === 'Escape' && state.editing) { e.preventDefault(); stopEdit(); }
  });
  $('text').addEventListener('input', () => { autosize(); checkLength(); typed(); });
  $('messages').addEventListener('scroll', () => {
    if (state.newBelow && nearBottom()) { state.newBelow = false; $('new-below').hidden = true; markRead(currentRoom()); }
    loadOlder();
    loadNewer();
  });
  $('jump-latest').addEventListener('click', jumpToLatest);
  $('search-open').addEventListener('click', () => openSearch(true));
  $('search-close').addEventListener('click', () => openSearch(false));
  $('search-box').addEventListener('submit', (e) => { e.preventDefault(); startSearch(); });
  $('search-q').addEventListener('keydown', (e) => { if (e.key === 'Escape') openSearch(false); });
  $('search-more').addEventListener('click', () => { if (state.search?.last) startSearch(state.search.last); });
  $('new-below').addEventListener('click', () => {
    $('messages').scrollTop = $('messages').scrollHeight;
  });
  $('users-toggle').addEventListener('click', () => {
    const open = $('users').classList.toggle('open');
    $('users-toggle').setAttribute('aria-expanded', String(open));
  });
  $('rooms-toggle').addEventListener('click', () => {
    const open = $('rooms').classList.toggle('open');
    $('rooms-toggle').setAttribute('aria-expanded', String(open));
    if (open) offerRooms();
  });
  $('room-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (joinRoom($('room-name').value)) $('room-name').value = '';
  });
  $('room-name').addEventListener('focus', offerRooms);
  $('notify').addEventListener('click', async () => {
    try { await Notification.requestPermission(); } catch { /* refused or unsupported: the title still counts */ }
    renderNotifyButton();
  });
  window.addEventListener('popstate', () => {
    const name = roomFromPath();
    if (name && state.rooms.get(name)?.joined) switchTo(name, 'none');
    else if (name) joinRoom(name);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.current) {
      const r = currentRoom();
      if (r) { r.unread = 0; r.mentioned = false; markRead(r); }
      renderRooms();
    }
  });
}

function restoreRooms() {
  const saved = loadRooms();
  if (!saved) return;
  for (const name of saved.rooms.slice(0, 32)) {
    if (ROOM_RE.test(name) || (name.startsWith('@') && name.length > 1)) room(name).pending = true;
  }
  if (!state.wanted && saved.current && state.rooms.has(saved.current)) state.wanted = saved.current;
}

wire();
restoreRooms();
window.addEventListener('message', tokenFromParent);
if (state.token) state.me = { username: '', email: '', token: true };
if (badLink !== null) {
  $('room-error').textContent = `“${badLink}” is not a room name: names are 1 to 32 of a–z, 0–9, - and _.`;
}
renderScreens();
renderStatus();
renderRooms();
renderNotifyButton();
connect();
