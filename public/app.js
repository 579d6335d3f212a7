/**
 * The RemoteMedia browser client: pipelines over REST (docs/rest.md), streaming over the WebSocket
 * protocol (docs/protocol.md) with AudioWorklets (worklets.js). Plain modules, no build step.
 */

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'remotemedia.api_key';
/** Round trips remembered for the live percentiles: the last ~10 s of 20 ms messages. */
const RTT_WINDOW = 500;
/** Send times remembered by message index; far more than the server ever has in flight. */
const SENT_RING = 4096;

const ui = { key: localStorage.getItem(KEY_STORAGE) ?? '', selected: null, etag: null, stream: null };

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

/** fetch with the API key; answers `{ res, data }` with JSON or text. */
async function api(path, { method = 'GET', body, type, headers = {} } = {}) {
  const h = { ...headers };
  if (ui.key) h.authorization = `Bearer ${ui.key}`;
  if (body !== undefined) h['content-type'] = type ?? 'application/json';
  const res = await fetch(path, { method, headers: h, body });
  if (res.status === 401) {
    setStatus('This server needs an API key: enter it above.', true);
    $('api-key').focus();
  }
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  const data = res.status === 204 ? null : isJson ? await res.json() : await res.text();
  return { res, data };
}

// ── Pipelines ────────────────────────────────────────────────────────────────────────────────────

async function loadPipelines() {
  const items = [];
  let cursor = null;
  do {
    const q = new URLSearchParams({ limit: '100', ...(cursor ? { cursor } : {}) });
    const { res, data } = await api(`/v1/pipelines?${q}`);
    if (!res.ok) return;
    items.push(...data.items);
    cursor = data.next_cursor;
  } while (cursor);

  $('pipeline-list').replaceChildren(
    ...items.map((p) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = `${p.name} (v${p.version})`;
      button.setAttribute('aria-pressed', String(p.id === ui.selected));
      button.addEventListener('click', () => openPipeline(p.id));
      const li = document.createElement('li');
      li.append(button);
      return li;
    }),
  );
  const select = $('stream-pipeline');
  const keep = select.value;
  select.replaceChildren(...items.map((p) => new Option(`${p.name} (${p.id})`, p.id)));
  if (items.some((p) => p.id === keep)) select.value = keep;
}

async function openPipeline(id) {
  const { res, data } = await api(`/v1/pipelines/${encodeURIComponent(id)}`);
  if (!res.ok) return setStatus(data?.detail ?? `Could not load ${id}`, true);
  ui.selected = id;
  ui.etag = res.headers.get('etag');
  const yaml = typeof data.source === 'string' && data.content_type?.includes('yaml');
  $('doc-format').value = yaml ? 'application/yaml' : 'application/json';
  $('doc').value = yaml ? data.source : JSON.stringify(data.definition, null, 2);
  $('editing').textContent = `Editing ${data.name}, version ${data.version}`;
  $('doc-errors').replaceChildren();
  $('stream-pipeline').value = id;
  await loadPipelines();
}

function newPipeline() {
  ui.selected = null;
  ui.etag = null;
  $('doc-format').value = 'application/json';
  $('doc').value = JSON.stringify(
    {
      name: 'my-pipeline',
      nodes: [
        { id: 'mono', type: 'downmix' },
        { id: 'vad', type: 'vad' },
      ],
    },
    null,
    2,
  );
  $('editing').textContent = 'New pipeline';
  $('doc-errors').replaceChildren();
}

async function savePipeline(event) {
  event.preventDefault();
  const path = ui.selected ? `/v1/pipelines/${encodeURIComponent(ui.selected)}` : '/v1/pipelines';
  const { res, data } = await api(path, {
    method: ui.selected ? 'PUT' : 'POST',
    body: $('doc').value,
    type: $('doc-format').value,
    headers: ui.selected && ui.etag ? { 'if-match': ui.etag } : {},
  });
  const errors = res.status === 422 && Array.isArray(data.errors) ? data.errors : [];
  $('doc-errors').replaceChildren(
    ...errors.map((e) =>
      Object.assign(document.createElement('li'), { textContent: `${e.path}: ${e.message}` }),
    ),
  );
  if (res.status === 412) return setStatus('Someone saved a newer version: reopen the pipeline first.', true);
  if (!res.ok) return setStatus(data?.detail ?? `Save failed (${res.status})`, true);
  setStatus(`Saved ${data.name}, version ${data.version}`);
  await openPipeline(data.id);
}

async function loadCatalog() {
  const { res, data } = await api('/v1/nodes');
  if (!res.ok) return;
  const nodes = data.items;
  $('catalog').replaceChildren(
    ...nodes.flatMap((n) => {
      const params = Object.keys(n.params?.properties ?? {});
      const dd = document.createElement('dd');
      dd.textContent = [
        n.description,
        params.length ? `params: ${params.join(', ')}` : 'no params',
        n.emits_events ? `events: ${(n.events ?? []).join(', ')}` : '',
      ]
        .filter(Boolean)
        .join(' · ');
      return [Object.assign(document.createElement('dt'), { textContent: n.type }), dd];
    }),
  );
}

// ── Drawing ──────────────────────────────────────────────────────────────────────────────────────

/** A rolling mono history of the last `seconds` of audio, drawn as a min/max waveform. */
class Scope {
  constructor(canvas, sampleRate, seconds = 2) {
    this.canvas = canvas;
    this.data = new Float32Array(Math.round(sampleRate * seconds));
  }

  push(interleaved, channels) {
    const frames = Math.min(interleaved.length / channels, this.data.length);
    const d = this.data;
    d.copyWithin(0, frames);
    for (let f = 0; f < frames; f++) {
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += interleaved[f * channels + c];
      d[d.length - frames + f] = sum / channels;
    }
  }

  draw() {
    const { width, height } = this.canvas;
    const g = this.canvas.getContext('2d');
    g.fillStyle = '#10161d';
    g.fillRect(0, 0, width, height);
    g.fillStyle = '#4fd18b';
    const per = this.data.length / width;
    for (let x = 0; x < width; x++) {
      let lo = 1;
      let hi = -1;
      for (let i = Math.floor(x * per); i < Math.floor((x + 1) * per); i++) {
        lo = Math.min(lo, this.data[i]);
        hi = Math.max(hi, this.data[i]);
      }
      const top = ((1 - Math.max(hi, lo)) * height) / 2;
      g.fillRect(x, top, 1, Math.max(1, ((hi - lo) * height) / 2));
    }
  }
}

/** Bars of dB values (0 dBFS at the top, -120 at the bottom). */
function drawSpectrum(db) {
  const canvas = $('spectrum');
  const { width, height } = canvas;
  const g = canvas.getContext('2d');
  g.fillStyle = '#10161d';
  g.fillRect(0, 0, width, height);
  g.fillStyle = '#6aa8ff';
  const w = width / db.length;
  db.forEach((v, i) => {
    const h = Math.max(0, Math.min(1, (v + 120) / 120)) * height;
    g.fillRect(i * w, height - h, Math.max(1, w - 1), h);
  });
}

/** Nearest-rank percentile of unsorted values. */
function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

// ── Streaming ────────────────────────────────────────────────────────────────────────────────────

function addEvent(text, name) {
  const li = document.createElement('li');
  li.textContent = text;
  li.dataset.name = name;
  $('events').prepend(li);
  while ($('events').children.length > 50) $('events').lastElementChild.remove();
}

function encodeFrame(frame, encoding) {
  if (encoding === 'f32le') return frame.buffer;
  const out = new Int16Array(frame.length);
  for (let i = 0; i < frame.length; i++) out[i] = Math.round(Math.max(-1, Math.min(1, frame[i])) * 32767);
  return out.buffer;
}

function decodeFrame(buffer, encoding) {
  if (encoding === 'f32le') return new Float32Array(buffer);
  const s16 = new Int16Array(buffer);
  const out = new Float32Array(s16.length);
  for (let i = 0; i < s16.length; i++) out[i] = s16[i] / 32768;
  return out;
}

async function openSource(ctx) {
  if (document.querySelector('input[name="source"]:checked').value === 'mic') {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    return {
      node: ctx.createMediaStreamSource(media),
      stop: () => {
        for (const track of media.getTracks()) track.stop();
      },
    };
  }
  const file = $('wav-file').files[0];
  if (!file) throw new Error('Choose a WAV file first.');
  const node = ctx.createBufferSource();
  node.buffer = await ctx.decodeAudioData(await file.arrayBuffer());
  node.onended = stopStream; // the whole file was sent
  return {
    node,
    stop: () => {
      try {
        node.stop();
      } catch {} // never started: the server did not get ready
    },
  };
}

async function startStream(event) {
  event.preventDefault();
  const id = $('stream-pipeline').value;
  if (!id) return setStatus('Create a pipeline first.', true);
  const encoding = $('encoding').value;
  $('start').disabled = true;
  const rate = Number($('rate').value);
  // The browser resamples the source to the rate the pipeline is sent (0: the device's own rate).
  const ctx = new AudioContext({ latencyHint: 'interactive', ...(rate ? { sampleRate: rate } : {}) });
  let source;
  try {
    await ctx.audioWorklet.addModule('/ui/worklets.js');
    source = await openSource(ctx);
  } catch (err) {
    ctx.close();
    $('start').disabled = false;
    return setStatus(`Cannot open the source: ${err.message}`, true);
  }
  const capture = new AudioWorkletNode(ctx, 'capture', {
    numberOfOutputs: 0,
    channelCount: 1,
    channelCountMode: 'explicit',
    processorOptions: { frame_samples: Math.round(ctx.sampleRate / 50) },
  });
  source.node.connect(capture);

  const url = new URL(`/v1/pipelines/${encodeURIComponent(id)}/stream`, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (ui.key) url.searchParams.set('token', ui.key);
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const s = {
    ws,
    ctx,
    source,
    capture,
    encoding,
    ready: null,
    play: null,
    poll: null,
    render: null,
    sentAt: new Float64Array(SENT_RING),
    sent: 0,
    answered: 0,
    rtts: [],
    spectrumEvent: null,
    spectrumHeld: null,
    scopeIn: new Scope($('wave-in'), ctx.sampleRate),
    scopeOut: null,
  };
  ui.stream = s;
  $('events').replaceChildren();
  for (const o of ['rtt-p50', 'rtt-p99', 'srv-p50', 'srv-p99', 'out-format', 'srv-level']) $(o).value = '–';

  ws.onopen = () =>
    ws.send(
      JSON.stringify({
        type: 'start',
        input: { encoding, sample_rate: ctx.sampleRate, channels: 1 },
        output: { encoding },
      }),
    );
  ws.onmessage = (m) => (typeof m.data === 'string' ? onText(s, JSON.parse(m.data)) : onAudio(s, m.data));
  ws.onclose = (e) => finish(s, e);
  capture.port.onmessage = (m) => {
    if (!s.ready || ws.readyState !== WebSocket.OPEN) return;
    s.scopeIn.push(m.data, 1);
    s.sentAt[s.sent % SENT_RING] = performance.now();
    ws.send(encodeFrame(m.data, encoding));
    s.sent += 1;
  };
  $('stop').disabled = false;
  setStatus('Connecting…');
}

async function onText(s, msg) {
  switch (msg.type) {
    case 'ready': {
      s.ready = msg;
      const out = msg.output;
      $('out-format').value = `${out.encoding}, ${out.sample_rate} Hz, ${out.channels} ch`;
      setStatus(`Streaming: session ${msg.session_id}, pipeline latency ${msg.latency_ms} ms`);
      s.scopeOut = new Scope($('wave-out'), out.sample_rate);
      // Played at the pipeline's output rate: a second context, so the browser resamples for the speakers.
      const play = new AudioContext({ sampleRate: out.sample_rate, latencyHint: 'interactive' });
      await play.audioWorklet.addModule('/ui/worklets.js');
      const node = new AudioWorkletNode(play, 'playback', {
        numberOfInputs: 0,
        outputChannelCount: [out.channels],
        processorOptions: { channels: out.channels },
      });
      const analyser = play.createAnalyser();
      analyser.fftSize = 2048;
      node.connect(analyser).connect(play.destination);
      s.play = { ctx: play, node, analyser, db: new Float32Array(analyser.frequencyBinCount) };
      s.source.node.start?.();
      s.render = setInterval(() => render(s), 100);
      s.poll = setInterval(() => pollSession(s), 1000);
      break;
    }
    case 'event':
      if (msg.name === 'spectrum') s.spectrumEvent = msg.data;
      else if (msg.name === 'level') $('srv-level').value = `${msg.data.rms_dbfs} / ${msg.data.peak_dbfs}`;
      else {
        const at = s.ready ? ` at ${(msg.sample / s.ready.input.sample_rate).toFixed(2)} s` : '';
        const data = Object.keys(msg.data ?? {}).length ? ` ${JSON.stringify(msg.data)}` : '';
        addEvent(`${msg.node}: ${msg.name}${at}${data}`, msg.name);
      }
      break;
    case 'stats':
      showServerLatency(msg.latency);
      setStatus(
        `Session ended: ${msg.frames_in} messages in, ${msg.frames_out} out, ${msg.frames_dropped} dropped`,
      );
      break;
    case 'dropped':
      addEvent(`server dropped ${msg.frames.length} messages (queue full)`, 'dropped');
      break;
    case 'error':
      addEvent(`error ${msg.code}: ${msg.message}`, 'error');
      setStatus(msg.message, true);
      if (!s.ready) s.ws.close(1000); // `start` was refused: nothing to stop
      break;
  }
}

function onAudio(s, buffer) {
  const n = s.answered++;
  // Past the last message sent comes the tail of `stop`'s flush, which answers no message.
  if (n < s.sent) s.rtts[n % RTT_WINDOW] = performance.now() - s.sentAt[n % SENT_RING];
  if (buffer.byteLength === 0 || !s.play) return; // a node still filling its window
  const samples = decodeFrame(buffer, s.ready.output.encoding);
  s.scopeOut.push(samples, s.ready.output.channels);
  s.play.node.port.postMessage(samples, [samples.buffer]);
}

function render(s) {
  $('msgs-sent').value = s.sent;
  $('msgs-answered').value = s.answered;
  if (s.rtts.length) {
    $('rtt-p50').value = percentile(s.rtts, 0.5).toFixed(1);
    $('rtt-p99').value = percentile(s.rtts, 0.99).toFixed(1);
  }
  s.scopeIn.draw();
  s.scopeOut?.draw();
  if (s.spectrumEvent) {
    $('spectrum-source').textContent = '(from the pipeline’s spectrum node)';
    // Peak hold falling 60 dB/s, so pauses between words do not blank the display at once.
    const db = s.spectrumEvent.bands_db ?? s.spectrumEvent.bins_db ?? [];
    s.spectrumHeld = db.map((v, i) => Math.max(v, (s.spectrumHeld?.[i] ?? -160) - 6));
    drawSpectrum(s.spectrumHeld);
  } else if (s.play) {
    $('spectrum-source').textContent = '(analyser on the output)';
    s.play.analyser.getFloatFrequencyData(s.play.db);
    drawSpectrum(s.play.db.subarray(0, s.play.db.length / 2));
  }
}

function showServerLatency(latency) {
  if (!latency?.count) return;
  $('srv-p50').value = latency.p50_ms.toFixed(2);
  $('srv-p99').value = latency.p99_ms.toFixed(2);
}

async function pollSession(s) {
  const { res, data } = await api(`/v1/sessions/${encodeURIComponent(s.ready.session_id)}`);
  if (res.ok) showServerLatency(data.latency);
  else clearInterval(s.poll); // gone, or a server without the sessions route: the final stats still come
}

function stopStream() {
  const s = ui.stream;
  if (!s) return;
  $('stop').disabled = true;
  s.source.node.disconnect();
  s.source.stop();
  if (!s.ready) s.ws.close(1000);
  else if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ type: 'stop' }));
  setStatus('Stopping…');
}

function finish(s, closeEvent) {
  clearInterval(s.poll);
  clearInterval(s.render);
  render(s);
  s.source.stop();
  s.ctx.close();
  s.play?.ctx.close();
  if (closeEvent.code === 1006 && !s.ready) {
    // docs/protocol.md §1: refused before the upgrade; the browser does not show the HTTP status.
    setStatus('The server refused the stream: unknown pipeline, wrong API key or too many sessions.', true);
  } else if (closeEvent.code !== 1000 && closeEvent.code !== 1005) {
    setStatus(`Stream closed: ${closeEvent.code} ${closeEvent.reason}`, true);
  }
  ui.stream = null;
  $('start').disabled = false;
  $('stop').disabled = true;
  document.body.dataset.streamClosed = String(closeEvent.code);
}

// ── Wiring ───────────────────────────────────────────────────────────────────────────────────────

$('api-key').value = ui.key;
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  ui.key = $('api-key').value.trim();
  localStorage.setItem(KEY_STORAGE, ui.key);
  setStatus(ui.key ? 'Key saved in this browser.' : 'Key cleared.');
  loadPipelines();
  loadCatalog();
});
$('new-pipeline').addEventListener('click', newPipeline);
$('editor').addEventListener('submit', savePipeline);
$('stream-form').addEventListener('submit', startStream);
$('stop').addEventListener('click', stopStream);
newPipeline();
await Promise.all([loadPipelines(), loadCatalog()]);
document.body.dataset.loaded = 'true';
