// Emoji on the page: the shortcode table (/emoji.js, made at build time from
// the emojis crate's data, so it works offline like everything else), `:code`
// suggestions while typing, `:code:` turned into its emoji when a message is
// sent (the wire carries the emoji), and the reaction picker. No state of the
// chat lives here: app.js passes in what to do with a choice.

// What the picker offers first, as Slack and GitHub do.
export const COMMON = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

let table = null;   // [[code, emoji], ...] in the Unicode order (faces first)
let byCode = null;  // code -> emoji

function load() {
  if (table !== null && table.length > 0) return;
  const text = self.PICOCHAT_EMOJI || '';
  table = [];
  byCode = new Map();
  for (const line of text.split('\n')) {
    const at = line.indexOf(' ');
    if (at <= 0) continue;
    const code = line.slice(0, at);
    const emoji = line.slice(at + 1);
    table.push([code, emoji]);
    if (!byCode.has(code)) byCode.set(code, emoji);
  }
}

// The emoji a shortcode names (`smile`), if any.
export function emojiFor(code) {
  load();
  return byCode.get(code.toLowerCase());
}

// Up to `n` [code, emoji] whose code starts with `part`, then those that contain it.
export function matching(part, n = 8) {
  load();
  const p = part.toLowerCase();
  const starts = [];
  const contains = [];
  const seen = new Set();
  for (const [code, emoji] of table) {
    if (seen.has(emoji)) continue;
    if (code.startsWith(p)) { starts.push([code, emoji]); seen.add(emoji); }
    else if (p.length >= 2 && code.includes(p)) contains.push([code, emoji]);
    if (starts.length >= n) break;
  }
  const out = starts.slice(0, n);
  for (const c of contains) {
    if (out.length >= n) break;
    if (!seen.has(c[1])) { out.push(c); seen.add(c[1]); }
  }
  return out;
}

// A message's text with every `:code:` the table knows replaced by its emoji.
export function withEmoji(text) {
  return text.replace(/:([a-z0-9_+-]{1,40}):/gi, (all, code) => emojiFor(code) ?? all);
}

// The `:code` being typed just before the caret (at least 2 characters), if any.
export function typedCode(text, caret) {
  const m = /(^|[\s(]):([a-z0-9_+-]{2,40})$/i.exec(text.slice(0, caret));
  return m ? { start: caret - m[2].length - 1, code: m[2] } : null;
}

// The composer's suggestion list: shows matches for the `:code` at the caret;
// Tab or Enter (or a click) puts the emoji in its place, Esc closes it.
export function suggest(textarea, list) {
  let items = [];
  let at = 0;
  let typed = null;
  const close = () => { list.hidden = true; items = []; typed = null; };
  const pick = (i) => {
    if (!typed || !items[i]) return;
    const [, emoji] = items[i];
    const v = textarea.value;
    const end = typed.start + 1 + typed.code.length;
    textarea.value = v.slice(0, typed.start) + emoji + v.slice(end);
    const caret = typed.start + emoji.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.dispatchEvent(new Event('input'));
    textarea.focus();
  };
  const render = () => {
    list.replaceChildren(...items.map(([code, emoji], i) => {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.id = `emoji-option-${i}`;
      li.setAttribute('aria-selected', String(i === at));
      li.textContent = `${emoji} :${code}:`;
      li.addEventListener('mousedown', (e) => { e.preventDefault(); pick(i); });
      return li;
    }));
    list.hidden = items.length === 0;
    if (items.length) textarea.setAttribute('aria-activedescendant', `emoji-option-${at}`);
    else textarea.removeAttribute('aria-activedescendant');
  };
  textarea.addEventListener('input', () => {
    typed = typedCode(textarea.value, textarea.selectionStart);
    items = typed ? matching(typed.code) : [];
    at = 0;
    render();
  });
  // Closed when the composer loses focus for good (a click on a suggestion
  // keeps it; a blur the page takes back at once does not count).
  textarea.addEventListener('blur', () => setTimeout(() => {
    if (document.activeElement !== textarea) close();
  }, 100));
  // Runs before app.js's own Enter handler (it is added first): a pick eats the key.
  textarea.addEventListener('keydown', (e) => {
    if (list.hidden || items.length === 0) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      at = (at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      render();
    } else if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey)) {
      e.preventDefault();
      e.stopImmediatePropagation();
      pick(at);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopImmediatePropagation();
      close();
    }
  });
}

// A small picker under `anchor`: the common emoji, and a search by shortcode.
// `choose(emoji)` is called with the pick; the picker closes itself.
export function openPicker(anchor, choose) {
  document.querySelector('.emoji-picker')?.remove();
  const box = document.createElement('div');
  box.className = 'emoji-picker';
  box.setAttribute('role', 'dialog');
  box.setAttribute('aria-label', 'Pick a reaction');
  const row = document.createElement('div');
  row.className = 'emoji-row';
  const button = (emoji, title) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'emoji-choice';
    b.textContent = emoji;
    b.title = title || emoji;
    b.addEventListener('click', () => { box.remove(); choose(emoji); });
    return b;
  };
  const fill = (list) => row.replaceChildren(...list.map(([code, emoji]) => button(emoji, code ? `:${code}:` : emoji)));
  fill(COMMON.map((e) => ['', e]));
  const search = document.createElement('input');
  search.type = 'search';
  search.placeholder = 'Search :shortcode';
  search.setAttribute('aria-label', 'Search emoji by shortcode');
  search.addEventListener('input', () => {
    const q = search.value.trim().replace(/^:|:$/g, '');
    fill(q ? matching(q, 16) : COMMON.map((e) => ['', e]));
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') box.remove();
    if (e.key === 'Enter') { e.preventDefault(); row.querySelector('button')?.click(); }
  });
  box.append(row, search);
  anchor.append(box);
  search.focus();
  const away = (e) => {
    if (!box.contains(e.target)) { box.remove(); document.removeEventListener('mousedown', away); }
  };
  setTimeout(() => document.addEventListener('mousedown', away), 0);
}
