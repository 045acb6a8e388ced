// Pictures on the page: an image attached (the 📎 button, a paste, a drop)
// is shown as a preview above the composer, downsized in the browser when
// it is a large photo (longest side 2,048 px, re-encoded: that also drops
// its EXIF, location included, and keeps a phone link's upload small),
// then sent as `{"type":"upload"}` followed by its bytes, with a progress
// bar while they leave. No chat state lives here: app.js passes in how to
// send and what the server allows.

const LONGEST = 2048;
const TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

// A photo larger than LONGEST px a side, re-encoded smaller (JPEG stays
// JPEG, the others become PNG unless WebP); GIFs (maybe animated) and small
// images go as they are: the server strips what could leak either way.
export async function prepared(file) {
  if (!TYPES.includes(file.type)) throw new Error('Only PNG, JPEG, GIF and WebP images can be sent.');
  if (file.type === 'image/gif') return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new Error('This image cannot be read.');
  }
  const scale = Math.min(1, LONGEST / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && file.size < 1024 * 1024) { bitmap.close(); return file; }
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const type = file.type === 'image/png' ? 'image/png' : file.type;
  const blob = await new Promise((ok) => canvas.toBlob(ok, type, 0.85));
  return blob && blob.size < file.size ? blob : file;
}

// The attachment waiting in the composer: `set(blob)` shows its preview,
// `take()` hands it over and clears it.
export function attachmentBox(box, onChange) {
  let current = null;
  let url = null;
  const clear = () => {
    if (url) URL.revokeObjectURL(url);
    current = null;
    url = null;
    box.replaceChildren();
    box.hidden = true;
    onChange(null);
  };
  return {
    get: () => current,
    set(blob) {
      clear();
      current = blob;
      url = URL.createObjectURL(blob);
      const img = new Image();
      img.src = url;
      img.alt = 'Image to send';
      const size = document.createElement('span');
      size.className = 'size';
      size.textContent = `${Math.max(1, Math.round(blob.size / 1024))} KB`;
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'link';
      cancel.textContent = '✕';
      cancel.title = 'Do not send this image';
      cancel.setAttribute('aria-label', 'Remove the image');
      cancel.addEventListener('click', clear);
      box.append(img, size, cancel);
      box.hidden = false;
      onChange(blob);
    },
    take() {
      const blob = current;
      current = null;
      if (url) setTimeout(() => URL.revokeObjectURL(url), 60000);
      url = null;
      box.replaceChildren();
      box.hidden = true;
      return blob;
    },
    clear,
  };
}

// Sends `blob` on `ws` after its announcement; `progress(fraction)` follows
// the bytes leaving (the socket's bufferedAmount going down), 1 when gone.
export async function send(ws, announce, blob, progress) {
  const bytes = await blob.arrayBuffer();
  ws.send(JSON.stringify({ ...announce, bytes: bytes.byteLength }));
  const before = ws.bufferedAmount;
  ws.send(bytes);
  const total = bytes.byteLength;
  const tick = () => {
    const left = Math.max(0, ws.bufferedAmount - before);
    progress(1 - left / total);
    if (left > 0 && ws.readyState === WebSocket.OPEN) setTimeout(tick, 100);
  };
  tick();
}
