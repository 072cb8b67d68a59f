// The service's page: transcribe a file, or record live over the WebSocket; words carry
// their times (click one to seek), playback highlights the current one; downloads are
// rendered by the service (/v1/render), in the CLI's formats.
"use strict";

const $ = (id) => document.getElementById(id);
const player = $("player");
let result = null; // the last final transcript: {text, words, duration, model}
let key = sessionStorage.getItem("wav2vec2-key") || "";
let recording = null;

function authHeaders() {
  return key ? { Authorization: "Bearer " + key } : {};
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function failed(response) {
  let message = response.statusText;
  try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
  if (response.status === 401) $("key-box").hidden = false;
  setStatus(`Error ${response.status}: ${message}`, true);
}

function show(t, final) {
  const box = $("transcript");
  box.replaceChildren();
  box.classList.toggle("partial", !final);
  for (const w of t.words) {
    const span = document.createElement("span");
    span.className = "word";
    span.textContent = w.word;
    span.dataset.start = w.start;
    span.dataset.end = w.end;
    span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s, confidence ${Math.round(w.confidence * 100)}%`;
    span.addEventListener("click", () => { player.currentTime = w.start; player.play(); });
    box.append(span, " ");
  }
  result = final ? t : null;
  for (const b of document.querySelectorAll(".downloads button")) b.disabled = !final;
}

function highlight() {
  const now = player.currentTime;
  for (const span of document.querySelectorAll("#transcript .word")) {
    const on = now >= +span.dataset.start && now < +span.dataset.end + 0.05;
    span.classList.toggle("current", on);
  }
}

async function transcribeFile(file) {
  setStatus(`Transcribing ${file.name}…`);
  player.src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("file", file);
  const response = await fetch("/v1/transcribe", { method: "POST", body: form, headers: authHeaders() });
  if (!response.ok) return failed(response);
  const t = await response.json();
  show(t, true);
  setStatus(`${file.name}: ${t.words.length} words in ${t.duration.toFixed(1)} s of audio.`);
}

// -- live ----------------------------------------------------------------------------------
async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext({ sampleRate: 16000 });
  await context.audioWorklet.addModule("/recorder.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "recorder");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/listen?encoding=f32le`);
  socket.binaryType = "arraybuffer";
  const pieces = [];
  recording = { stream, context, node, socket, pieces };
  socket.onopen = () => {
    if (key) socket.send(JSON.stringify({ api_key: key }));
    node.port.onmessage = (e) => {
      pieces.push(e.data);
      if (socket.readyState === WebSocket.OPEN) socket.send(e.data.buffer);
    };
    source.connect(node);
    node.connect(context.destination); // pulls the graph; the node itself outputs silence
    setStatus("Recording… the transcript appears as you speak.");
  };
  socket.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "partial") {
      show(m, false);
    } else if (m.type === "final") {
      show(m, true);
      player.src = URL.createObjectURL(wav(pieces, 16000));
      setStatus(`Recorded ${m.duration.toFixed(1)} s: ${m.words.length} words.`);
    } else if (m.type === "error") {
      if (m.error.code === 401) $("key-box").hidden = false;
      setStatus(`Error ${m.error.code}: ${m.error.message}`, true);
    }
  };
  socket.onerror = () => setStatus("The live connection failed.", true);
  $("record").classList.add("on");
  $("record").disabled = true;
  $("stop").disabled = false;
}

function stopRecording() {
  if (!recording) return;
  const { stream, context, node, socket } = recording;
  node.port.onmessage = null;
  node.disconnect();
  for (const track of stream.getTracks()) track.stop();
  context.close();
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stop" }));
  setStatus("Finishing the transcript…");
  recording = null;
  $("record").classList.remove("on");
  $("record").disabled = false;
  $("stop").disabled = true;
}

function wav(pieces, rate) {
  // 16-bit PCM WAV of the recorded Float32Arrays, for playback
  const n = pieces.reduce((sum, p) => sum + p.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true); text(36, "data");
  view.setUint32(40, 2 * n, true);
  let at = 44;
  for (const p of pieces) {
    for (const x of p) { view.setInt16(at, Math.max(-1, Math.min(1, x)) * 32767, true); at += 2; }
  }
  return new Blob([view], { type: "audio/wav" });
}

// -- downloads -----------------------------------------------------------------------------
async function download(format) {
  const response = await fetch(`/v1/render?format=${format}`, {
    method: "POST", body: JSON.stringify(result),
    headers: { "Content-Type": "application/json", ...authHeaders() },
  });
  if (!response.ok) return failed(response);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `transcript.${format}`;
  link.click();
}

// -- wiring --------------------------------------------------------------------------------
$("file").addEventListener("change", (e) => { if (e.target.files[0]) transcribeFile(e.target.files[0]); });
$("record").addEventListener("click", () => startRecording().catch((e) => setStatus(`Cannot record: ${e.message}`, true)));
$("stop").addEventListener("click", stopRecording);
$("key").value = key;
$("key").addEventListener("change", (e) => { key = e.target.value; sessionStorage.setItem("wav2vec2-key", key); });
for (const b of document.querySelectorAll(".downloads button")) {
  b.addEventListener("click", () => download(b.dataset.format));
}
player.addEventListener("timeupdate", highlight);
player.addEventListener("seeked", highlight);
fetch("/v1/models", { headers: authHeaders() }).then(async (r) => {
  if (r.ok) $("model").textContent = "model: " + (await r.json()).data[0].id;
  else if (r.status === 401) $("key-box").hidden = false;
});
