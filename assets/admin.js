// picochat admin page: signs in with the admin token (kept in sessionStorage,
// sent as a Bearer header on every call), then polls the admin API: samples
// every second for the charts (drawn here as SVG), rooms and the chosen
// room's messages every two seconds, bans every five. User text reaches the
// DOM only through textContent.

const $ = (id) => document.getElementById(id);
const TOKEN_STORE = 'picochat.admin-token';
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  token: sessionStorage.getItem(TOKEN_STORE),
  room: null,          // the room shown in the room panel
  rooms: [],
  timers: [],
  busy: new Set(),     // polls in flight, so a slow server is not asked twice
};

class Refused extends Error {}

async function api(method, path, params) {
  const query = params ? `?${new URLSearchParams(params)}` : '';
  const res = await fetch(`/api/admin/${path}${query}`, {
    method,
    headers: { Authorization: `Bearer ${state.token}` },
    cache: 'no-store',
  });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403 || res.status === 429) {
    signOut(body.message || 'The server refused the token.');
    throw new Refused(body.message);
  }
  if (!res.ok) throw new Error(body.message || `${res.status}`);
  return body;
}

function say(text, bad = false) {
  $('message').textContent = text;
  $('message').classList.toggle('bad', bad);
}

// Runs one poll unless the previous one is still waiting.
async function poll(name, fn) {
  if (state.busy.has(name) || !state.token) return;
  state.busy.add(name);
  try {
    await fn();
    setStatus('online', 'Live');
  } catch (e) {
    if (!(e instanceof Refused)) setStatus('offline', 'Server not answering');
  } finally {
    state.busy.delete(name);
  }
}

function setStatus(s, text) {
  $('status').dataset.state = s;
  $('status-text').textContent = text;
}

// ---------- charts ----------

function fmt(n) {
  if (n >= 10000) return `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k`;
  if (n < 100 && !Number.isInteger(n)) return n.toFixed(1);
  return String(Math.round(n));
}

function el(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// One series over the last 600 s: x is time (the newest sample at the right
// edge), y from 0 to a rounded-up peak.
function drawChart(figure, t, raw) {
  const scale = Number(figure.dataset.scale || 1);
  const values = raw.map((v) => v * scale);
  const svg = figure.querySelector('svg');
  const unit = figure.dataset.unit;
  const last = values.length ? values[values.length - 1] : 0;
  figure.querySelector('.now').textContent = `${fmt(last)}${unit}`;
  const peak = Math.max(scale === 1 ? 1 : 0.1, ...values);
  const top = niceCeil(peak);
  figure.querySelector('.peak').textContent = `max ${fmt(top)}${unit} · 10 min`;
  const end = t.length ? t[t.length - 1] : 0;
  const x = (ti) => 600 - (end - ti);
  const y = (v) => 100 - (v / top) * 96;
  const points = t.map((ti, i) => `${x(ti).toFixed(1)},${y(values[i]).toFixed(1)}`);
  const parts = [el('line', { class: 'grid', x1: 0, x2: 600, y1: 52, y2: 52 })];
  if (points.length > 1) {
    parts.push(el('polygon', { class: 'area', points: `${x(t[0])},100 ${points.join(' ')} 600,100` }));
    parts.push(el('polyline', { class: 'line', points: points.join(' ') }));
  }
  svg.replaceChildren(...parts);
}

function niceCeil(n) {
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

async function loadSamples() {
  const s = await api('GET', 'samples');
  for (const figure of document.querySelectorAll('.chart')) {
    drawChart(figure, s.t, s[figure.dataset.series] || []);
  }
}

// ---------- rooms, people, messages ----------

function button(text, onClick, cls = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

function span(text, cls) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

async function loadRooms() {
  const body = await api('GET', 'rooms');
  state.rooms = body.rooms;
  $('no-rooms').hidden = body.rooms.length > 0;
  $('rooms').replaceChildren(...body.rooms.map((r) => {
    const li = document.createElement('li');
    const b = button('', () => choose(r.room));
    b.dataset.room = r.room;
    b.append(span(`#${r.room}`, 'name'), span(`${r.online} online`, 'muted'));
    if (r.room === state.room) b.setAttribute('aria-current', 'true');
    li.append(b);
    return li;
  }));
  if (!state.room && body.rooms.length) choose(body.rooms[0].room);
  renderPeople();
}

function renderPeople() {
  const r = state.rooms.find((x) => x.room === state.room);
  const people = r ? r.users : [];
  $('people').replaceChildren(...people.map((u) => {
    const li = document.createElement('li');
    li.dataset.user = u.username;
    const addrs = [...new Set(u.connections.map((c) => c.address).filter(Boolean))];
    li.append(span(u.username, 'who'), span(`${u.connections.length} tab${u.connections.length === 1 ? '' : 's'} ${addrs.join(' ')}`, 'addr'));
    li.append(button('Kick', () => act(`Kicked ${u.username}.`, 'POST', `users/${encodeURIComponent(u.username)}/kick`)));
    li.append(button('Ban 1 day', () => act(`Banned ${u.username} for a day.`, 'POST', 'bans', { name: u.username, for: '24h' }), 'danger ban'));
    for (const a of addrs) {
      li.append(button(`Ban ${a}`, () => act(`Banned ${a} for a day.`, 'POST', 'bans', { address: a, for: '24h' }), 'danger'));
    }
    return li;
  }));
}

async function choose(room) {
  state.room = room;
  $('room-panel').hidden = false;
  $('room-heading').textContent = `#${room}`;
  for (const b of $('rooms').querySelectorAll('button')) {
    if (b.dataset.room === room) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
  renderPeople();
  const s = await api('GET', `rooms/${room}/settings`).catch(() => null);
  if (s && state.room === room) {
    $('topic').value = s.topic;
    $('slow-mode').value = String(s.slow_mode);
    $('read-only').checked = s.read_only;
  }
  poll('messages', loadMessages);
}

async function loadMessages() {
  if (!state.room) return;
  const room = state.room;
  const body = await api('GET', `rooms/${room}/messages`).catch((e) => {
    if (e instanceof Refused) throw e;
    return { messages: [] };   // the room emptied and is no longer held here
  });
  if (room !== state.room) return;
  const list = $('recent');
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const remove = (m, li) => () => {
    if (confirm(`Delete this message by ${m.username} for everyone?`)) {
      act('Message deleted.', 'DELETE', `rooms/${room}/messages/${m.id}`).then(() => {
        li.remove();
        loadMessages();
      });
    }
  };
  const recent = body.messages.slice(-50);
  list.replaceChildren(...recent.map((m) => {
    const li = document.createElement('li');
    li.dataset.id = String(m.id);
    const when = new Date(m.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(span(`${m.username} · ${when}${m.edited ? ' · edited' : ''}${m.by === 'admin' ? ' · moderator' : ''}`, 'meta'));
    li.append(span(m.attachment ? `[image] ${m.message}` : m.message, 'text'));
    li.append(button('Delete', remove(m, li), 'danger delete'));
    return li;
  }));
  if (stick) list.scrollTop = list.scrollHeight;
  // The images among them, newest first, each with its delete.
  const images = recent.filter((m) => m.attachment && String(m.attachment.url).startsWith('/u/')).reverse();
  $('no-images').hidden = images.length > 0;
  $('images').replaceChildren(...images.map((m) => {
    const li = document.createElement('li');
    li.dataset.id = String(m.id);
    const link = document.createElement('a');
    link.href = m.attachment.url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    const img = new Image();
    img.src = m.attachment.url;
    img.alt = m.message || `image by ${m.username}`;
    img.loading = 'lazy';
    link.append(img);
    li.append(link, span(`${m.username} · ${Math.round(m.attachment.bytes / 1024)} KB`, 'meta'));
    li.append(button('Delete', remove(m, li), 'danger delete'));
    return li;
  }));
}

async function loadBans() {
  const body = await api('GET', 'bans');
  $('bans').replaceChildren(...body.bans.map((b) => {
    const li = document.createElement('li');
    const who = b.name ?? b.address;
    const until = b.until ? `until ${new Date(b.until).toLocaleString()}` : 'until lifted';
    li.append(span(who, 'who'), span(`${until}${b.reason ? ` · ${b.reason}` : ''}`, 'muted'));
    li.append(button('Lift', () => act(`Lifted the ban on ${who}.`, 'DELETE', 'bans', b.name ? { name: b.name } : { address: b.address })));
    return li;
  }));
}

// One moderation call; the lists refresh right after.
async function act(done, method, path, params) {
  try {
    await api(method, path, params);
    say(done);
  } catch (e) {
    if (!(e instanceof Refused)) say(e.message, true);
    return;
  }
  setTimeout(() => {
    poll('rooms', loadRooms);
    poll('bans', loadBans);
    poll('messages', loadMessages);
  }, 150);
}

// ---------- sign-in ----------

function signIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_STORE, token);
  $('sign-in').hidden = true;
  $('dashboard').hidden = false;
  $('sign-out').hidden = false;
  setStatus('connecting', 'Connecting…');
  const every = (ms, name, fn) => {
    poll(name, fn);
    state.timers.push(setInterval(() => poll(name, fn), ms));
  };
  every(1000, 'samples', loadSamples);
  every(2000, 'rooms', loadRooms);
  every(2000, 'messages', loadMessages);
  every(5000, 'bans', loadBans);
}

function signOut(why = '') {
  state.token = null;
  sessionStorage.removeItem(TOKEN_STORE);
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.room = null;
  $('sign-in').hidden = false;
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('token-error').textContent = why;
  setStatus('offline', 'Signed out');
  $('token').focus();
}

function wire() {
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    $('token-error').textContent = '';
    signIn($('token').value.trim());
    $('token').value = '';
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('settings-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!state.room) return;
    act(`Saved the settings of #${state.room}.`, 'PUT', `rooms/${state.room}/settings`, {
      topic: $('topic').value,
      slow_mode: $('slow-mode').value || '0',
      read_only: String($('read-only').checked),
    });
  });
  $('post-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('post-text').value;
    if (!state.room || !text.trim()) return;
    act('Posted.', 'POST', `rooms/${state.room}/messages`, { text }).then(() => { $('post-text').value = ''; });
  });
  $('ban-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const who = $('ban-who').value.trim();
    const isAddress = /^[\d.]+$|:/.test(who);
    const params = isAddress ? { address: who } : { name: who };
    if ($('ban-for').value) params.for = $('ban-for').value;
    if ($('ban-reason').value.trim()) params.reason = $('ban-reason').value.trim();
    act(`Banned ${who}.`, 'POST', 'bans', params).then(() => { $('ban-who').value = ''; $('ban-reason').value = ''; });
  });
}

wire();
if (state.token) signIn(state.token); else signOut();
