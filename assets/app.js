// picochat page: one state object, small render functions, a reconnecting socket.
// User text only ever reaches the DOM through textContent (never innerHTML).

const $ = (id) => document.getElementById(id);
const STORE = 'picochat.me';

const state = {
  me: loadMe(),            // { username, email } from the join screen
  status: 'connecting',    // connecting | online | offline
  ws: null,
  retry: 0,                // reconnect attempts since the last welcome
  epoch: null,             // id sequence of the server; a new one resets the list
  lastId: 0,               // newest message id shown: the `since` of a reconnect
  seen: new Set(),         // ids shown, so a reconnect never duplicates
  users: [],               // [{ username, avatar }] (a very busy room lists only some)
  online: 0,               // how many are online, from the server
  you: null,               // { username, avatar } as the server knows us
  limits: { max_text: 8192, max_message: 16384 },
  unread: 0,
  newBelow: false,
  // Who was online when our connection dropped: their joins right after we
  // reconnect are reconnects too, not news.
  returning: new Set(),
};

function loadMe() {
  try { return JSON.parse(localStorage.getItem(STORE)) || null; } catch { return null; }
}

// ---------- rendering ----------

function renderScreens() {
  $('join-screen').hidden = !!state.me;
  $('chat-screen').hidden = !state.me;
  $('leave').hidden = !state.me;
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
  $('send').disabled = state.status !== 'online';
}

function renderUsers() {
  $('online-count').textContent = String(Math.max(state.online, state.users.length));
  const list = $('user-list');
  list.replaceChildren(...state.users.map((u) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = u.username;
    li.append(avatar(u, true), name);
    return li;
  }));
}

function renderTitle() {
  document.title = state.unread > 0 ? `(${state.unread}) picochat` : 'picochat';
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

// Plain text with http(s) links made clickable; everything else stays text.
function linkified(text) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(URL_RE)) {
    frag.append(document.createTextNode(text.slice(at, m.index)));
    const a = document.createElement('a');
    a.href = m[0];
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

function addMessage(m) {
  if (state.seen.has(m.id)) return;
  state.seen.add(m.id);
  state.lastId = Math.max(state.lastId, m.id);
  const li = document.createElement('li');
  li.className = isMine(m) ? 'msg mine' : 'msg';
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
  meta.append(name, when);
  const text = document.createElement('div');
  text.className = 'text';
  text.append(linkified(m.message));
  body.append(meta, text);
  li.append(avatar(m), body);
  appendItem(li);
  if (document.hidden) { state.unread += 1; renderTitle(); }
}

function addSystem(text) {
  const li = document.createElement('li');
  li.className = 'system';
  li.textContent = text;
  appendItem(li);
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

function connect() {
  if (!state.me) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/ws`);
  state.ws = ws;
  state.status = 'connecting';
  renderStatus();
  ws.addEventListener('open', () => {
    const join = { type: 'join', username: state.me.username };
    if (state.me.email) join.email = state.me.email;
    if (state.epoch !== null) { join.since = state.lastId; join.epoch = state.epoch; }
    ws.send(JSON.stringify(join));
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
    state.returning = new Set(state.users.map((u) => u.username));
    renderStatus();
    if (!state.me) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... at most 15 s.
    const delay = Math.min(15000, 500 * 2 ** state.retry) * (0.75 + Math.random() / 2);
    state.retry += 1;
    if (e.code === 1008) hint('Disconnected by the server: ' + (e.reason || 'policy'), true);
    setTimeout(connect, delay);
  });
}

function onServerMessage(m) {
  switch (m.type) {
    case 'welcome': {
      if (state.epoch !== null && m.epoch !== state.epoch) {
        // A different id sequence (the server started afresh): start over.
        $('messages').replaceChildren();
        state.seen.clear();
        state.lastId = 0;
      }
      const first = state.epoch === null;
      state.epoch = m.epoch;
      state.retry = 0;
      state.you = m.you;
      state.users = m.users;
      state.online = m.online ?? m.users.length;
      state.limits = m.limits;
      state.status = 'online';
      if (m.truncated && !first) showNotice('Some messages sent while you were away are no longer available.');
      setTimeout(() => state.returning.clear(), 30000);
      for (const msg of m.history) addMessage(msg);
      if (first) $('messages').scrollTop = $('messages').scrollHeight;
      renderStatus();
      renderUsers();
      checkLength();
      break;
    }
    case 'message':
      addMessage(m);
      break;
    case 'join':
      state.online = m.online;
      if (!state.users.some((u) => u.username === m.username)) {
        state.users = [...state.users, { username: m.username, avatar: m.avatar }]
          .sort((a, b) => (a.username < b.username ? -1 : 1));
      }
      if (!state.returning.delete(m.username)) addSystem(`${m.username} joined`);
      renderUsers();
      break;
    case 'leave':
      state.online = m.online;
      state.users = state.users.filter((u) => u.username !== m.username);
      addSystem(`${m.username} left`);
      renderUsers();
      break;
    case 'error':
      hint(m.message || m.code, true);
      break;
  }
}

// ---------- input ----------

const encoder = new TextEncoder();

// Refuses, before sending, what the server would refuse.
function checkLength() {
  const text = $('text').value;
  const bytes = encoder.encode(text).length;
  const frame = encoder.encode(JSON.stringify({ type: 'message', message: text })).length;
  if (bytes > state.limits.max_text || frame > state.limits.max_message) {
    hint(`Too long: ${bytes} of ${state.limits.max_text} bytes allowed.`, true);
    return false;
  }
  if ($('hint').textContent.startsWith('Too long')) hint('');
  return true;
}

function send() {
  const text = $('text').value;
  if (!text.trim() || !checkLength()) return;
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    hint('Not connected yet — your message is kept here.', true);
    return;
  }
  state.ws.send(JSON.stringify({ type: 'message', message: text }));
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
    state.seen.clear();
    state.epoch = null;
    state.lastId = 0;
    renderScreens();
  });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('text').addEventListener('input', () => { autosize(); checkLength(); });
  $('messages').addEventListener('scroll', () => {
    if (state.newBelow && nearBottom()) { state.newBelow = false; $('new-below').hidden = true; }
  });
  $('new-below').addEventListener('click', () => {
    $('messages').scrollTop = $('messages').scrollHeight;
  });
  $('users-toggle').addEventListener('click', () => {
    const open = $('users').classList.toggle('open');
    $('users-toggle').setAttribute('aria-expanded', String(open));
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) { state.unread = 0; renderTitle(); }
  });
}

wire();
renderScreens();
renderStatus();
connect();
