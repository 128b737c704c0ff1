// meetbot room page: joins a room over the signaling WebSocket (docs/protocol.md) and forms a
// WebRTC audio mesh with every other participant. Vanilla JS, no build step, no CDNs.
//
// Choices worth knowing:
// - Non-trickle: we wait for ICE gathering to finish before sending an SDP, because the bots are
//   aiortc peers that need every candidate in the SDP. Candidates that still arrive after a
//   gathering timeout are sent as `candidate` messages, and incoming ones are always applied.
// - Exactly one audio transceiver per connection, so the bot sees one track per participant.
// - Speaking indicators are computed here from audio levels (WebAudio AnalyserNode), so they
//   work for any peer; `speaking` messages from peers (bots, mostly) are honoured as well.
(() => {
  "use strict";

  const SPEAK_THRESHOLD = 0.015; // RMS of samples in [-1, 1], about -36 dBFS
  const SPEAK_ON_MS = 100; // level must stay above the threshold this long to count as speech
  const SPEAK_OFF_MS = 700; // and below it this long to count as silence again
  const LEVEL_INTERVAL_MS = 50;
  const ICE_GATHER_TIMEOUT_MS = 4000;
  const MAX_CAPTIONS = 20;
  const NAME_KEY = "meetbot.name";
  const MIC_BLOCKED = "Microphone blocked — you can still listen.";

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (key === "className") node.className = value;
        else if (key === "text") node.textContent = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children) {
      if (child != null) node.append(child);
    }
    return node;
  };

  const state = {
    room: roomFromPath(),
    phase: "idle", // "idle" | "joining" | "joined"
    joined: false,
    selfId: null,
    name: "",
    kind: "person",
    peers: new Map(), // id -> peer record (see addPeer)
    lastError: null, // {code, message} of the last error shown
    mic: null, // MediaStream of our microphone, or null when listening only
    micState: "off", // "off" | "on" | "blocked" | "unavailable"
    selfSpeaking: false,
    captions: [], // {from, name, text, final}
    notes: null,
  };

  let ws = null;
  let audioCtx = null;
  let selfMeter = null; // {source, analyser, vad}
  let levelTimer = null;

  // --- small helpers -------------------------------------------------------------------------

  function roomFromPath() {
    const match = location.pathname.match(/^\/r\/([^/]+)\/?$/);
    if (!match) return "";
    try {
      return decodeURIComponent(match[1]);
    } catch {
      return match[1];
    }
  }

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function setConn(stateName, text) {
    const pill = $("conn-status");
    pill.dataset.state = stateName;
    pill.textContent = text;
  }

  function showError(message, code) {
    state.lastError = { code: code || "client", message };
    const box = $("status");
    box.textContent = message;
    box.hidden = false;
  }

  function clearError() {
    $("status").hidden = true;
    $("status").textContent = "";
  }

  function setMicStatus(text, warn) {
    const node = $("mic-status");
    node.textContent = text;
    node.classList.toggle("warn", !!warn);
  }

  function validName(name) {
    // Mirrors the server's rule: 1-64 printable characters, not only spaces.
    return name.length >= 1 && name.length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(name);
  }

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const str = (v) => (v == null ? "" : String(v));
  const list = (v) => (Array.isArray(v) ? v : []);
  const objects = (v) => list(v).filter((x) => x && typeof x === "object"); // notes lists, defensively

  // --- speaking detection --------------------------------------------------------------------

  function makeVad() {
    // Debounced threshold detector: quick to notice speech, slow to drop it between words.
    return { speaking: false, loudSince: 0, lastLoud: 0 };
  }

  function updateVad(vad, level, now) {
    if (level >= SPEAK_THRESHOLD) {
      if (!vad.loudSince) vad.loudSince = now;
      vad.lastLoud = now;
    } else {
      vad.loudSince = 0;
    }
    const before = vad.speaking;
    if (!vad.speaking && vad.loudSince && now - vad.loudSince >= SPEAK_ON_MS) vad.speaking = true;
    else if (vad.speaking && now - vad.lastLoud >= SPEAK_OFF_MS) vad.speaking = false;
    return vad.speaking !== before;
  }

  function makeMeter(stream) {
    if (!audioCtx) return null;
    try {
      const source = audioCtx.createMediaStreamSource(stream);
      const analyser = audioCtx.createAnalyser();
      analyser.fftSize = 2048; // about 43 ms at 48 kHz: long enough to span a pitch period
      source.connect(analyser); // not to the destination: playback is the <audio> element's job
      return { source, analyser, buf: new Float32Array(analyser.fftSize), vad: makeVad() };
    } catch (err) {
      console.warn("meetbot: no level meter for stream", err);
      return null;
    }
  }

  function dropMeter(meter) {
    if (!meter) return;
    try {
      meter.source.disconnect();
    } catch {
      /* already disconnected */
    }
  }

  function level(meter) {
    meter.analyser.getFloatTimeDomainData(meter.buf);
    let sum = 0;
    for (const x of meter.buf) sum += x * x;
    return Math.sqrt(sum / meter.buf.length);
  }

  function onLevelTick() {
    const now = performance.now();
    if (selfMeter && updateVad(selfMeter.vad, level(selfMeter), now)) {
      state.selfSpeaking = selfMeter.vad.speaking;
      if (state.joined) send({ type: "speaking", speaking: state.selfSpeaking });
      renderSpeaking();
    }
    for (const peer of state.peers.values()) {
      if (peer.meter && updateVad(peer.meter.vad, level(peer.meter), now)) renderSpeaking();
    }
  }

  function ensureAudioContext() {
    // Created inside the Join click so browsers allow it to run (autoplay policy).
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audioCtx) audioCtx = new Ctx();
    if (audioCtx.state === "suspended") audioCtx.resume().catch(() => {});
    if (!levelTimer) levelTimer = setInterval(onLevelTick, LEVEL_INTERVAL_MS);
  }

  // --- microphone ----------------------------------------------------------------------------

  async function startMic() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      state.micState = "unavailable";
      setMicStatus(
        window.isSecureContext
          ? "No microphone available — you can still listen."
          : "Microphone needs HTTPS (or localhost) — you can still listen.",
        true,
      );
      return;
    }
    setMicStatus("Asking for your microphone…");
    try {
      state.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
      });
      state.micState = "on";
      setMicStatus("Microphone on.");
      selfMeter = makeMeter(state.mic);
    } catch (err) {
      state.mic = null;
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        state.micState = "blocked";
        setMicStatus(MIC_BLOCKED, true);
      } else if (name === "NotFoundError" || name === "OverconstrainedError") {
        state.micState = "unavailable";
        setMicStatus("No microphone found — you can still listen.", true);
      } else {
        state.micState = "unavailable";
        setMicStatus(`Microphone unavailable (${name || err}) — you can still listen.`, true);
      }
    }
  }

  function stopMic() {
    dropMeter(selfMeter);
    selfMeter = null;
    if (state.mic) for (const track of state.mic.getTracks()) track.stop();
    state.mic = null;
    state.micState = "off";
    state.selfSpeaking = false;
  }

  // --- peers and WebRTC ----------------------------------------------------------------------

  function addPeer(info) {
    if (!info || typeof info.id !== "string") return null;
    let peer = state.peers.get(info.id);
    if (!peer) {
      peer = {
        id: info.id,
        name: str(info.name) || "someone",
        kind: info.kind === "bot" ? "bot" : "person",
        pc: null,
        audio: null,
        meter: null,
        remoteSpeaking: false,
        connectionState: "new",
        sdpSent: false,
        pendingCandidates: [],
      };
      state.peers.set(peer.id, peer);
    }
    return peer;
  }

  function removePeer(id) {
    const peer = state.peers.get(id);
    if (!peer) return;
    closePeerConnection(peer);
    state.peers.delete(id);
  }

  function closePeerConnection(peer) {
    if (peer.pc) {
      peer.pc.ontrack = null;
      peer.pc.onicecandidate = null;
      peer.pc.onconnectionstatechange = null;
      peer.pc.close();
    }
    peer.pc = null;
    dropMeter(peer.meter);
    peer.meter = null;
    if (peer.audio) {
      peer.audio.srcObject = null;
      peer.audio.remove();
    }
    peer.audio = null;
    peer.sdpSent = false;
    peer.pendingCandidates = [];
  }

  function newPeerConnection(peer) {
    closePeerConnection(peer);
    const pc = new RTCPeerConnection({ iceServers: [] });
    peer.pc = pc;
    peer.connectionState = "connecting";
    pc.ontrack = (ev) => attachRemoteAudio(peer, ev.streams[0] || new MediaStream([ev.track]));
    pc.onicecandidate = (ev) => {
      // Only after a gathering timeout: late candidates follow the SDP (trickle fallback).
      if (peer.sdpSent && peer.pc === pc) {
        send({ type: "candidate", to: peer.id, candidate: ev.candidate ? ev.candidate.toJSON() : null });
      }
    };
    pc.onconnectionstatechange = () => {
      if (peer.pc !== pc) return;
      peer.connectionState = pc.connectionState;
      renderParticipants();
    };
    return pc;
  }

  function iceGatheringDone(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ICE_GATHER_TIMEOUT_MS);
      function finish() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState === "complete") finish();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function micTrack() {
    return state.mic ? state.mic.getAudioTracks()[0] || null : null;
  }

  async function offerTo(peer) {
    const pc = newPeerConnection(peer);
    try {
      const track = micTrack();
      if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [state.mic] });
      else pc.addTransceiver("audio", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringDone(pc);
      if (peer.pc !== pc) return; // replaced or closed while gathering
      send({ type: "offer", to: peer.id, sdp: pc.localDescription.sdp });
      peer.sdpSent = true;
    } catch (err) {
      peerFailed(peer, "could not offer", err);
    }
  }

  async function answerOffer(peer, sdp) {
    let pc = peer.pc;
    // A fresh offer replaces a connection that is mid-negotiation; a stable one renegotiates.
    if (!pc || pc.signalingState !== "stable") pc = newPeerConnection(peer);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp });
      await flushCandidates(peer);
      const transceivers = pc.getTransceivers().filter((t) => t.receiver.track.kind === "audio");
      const track = micTrack();
      for (const [i, t] of transceivers.entries()) {
        // The offer defines the transceivers; we send on the first audio one, receive on others.
        if (i === 0 && track) {
          t.direction = "sendrecv";
          await t.sender.replaceTrack(track);
          if (t.sender.setStreams) t.sender.setStreams(state.mic);
        } else {
          t.direction = "recvonly";
        }
      }
      await pc.setLocalDescription(await pc.createAnswer());
      await iceGatheringDone(pc);
      if (peer.pc !== pc) return;
      send({ type: "answer", to: peer.id, sdp: pc.localDescription.sdp });
      peer.sdpSent = true;
    } catch (err) {
      peerFailed(peer, "could not answer", err);
    }
  }

  async function applyAnswer(peer, sdp) {
    if (!peer.pc || peer.pc.signalingState !== "have-local-offer") return;
    try {
      await peer.pc.setRemoteDescription({ type: "answer", sdp });
      await flushCandidates(peer);
    } catch (err) {
      peerFailed(peer, "bad answer", err);
    }
  }

  async function addCandidate(peer, candidate) {
    if (!peer.pc || !peer.pc.remoteDescription) {
      peer.pendingCandidates.push(candidate);
      return;
    }
    try {
      // null means "no more candidates"; browsers take that as a call without arguments.
      if (candidate) await peer.pc.addIceCandidate(candidate);
      else await peer.pc.addIceCandidate();
    } catch (err) {
      console.warn("meetbot: candidate from", peer.id, "rejected", err);
    }
  }

  async function flushCandidates(peer) {
    const pending = peer.pendingCandidates;
    peer.pendingCandidates = [];
    for (const candidate of pending) await addCandidate(peer, candidate);
  }

  function peerFailed(peer, what, err) {
    console.warn(`meetbot: ${what} (${peer.name})`, err);
    peer.connectionState = "failed";
    renderParticipants();
  }

  function attachRemoteAudio(peer, stream) {
    if (!peer.audio) {
      peer.audio = el("audio", { autoplay: "", playsinline: "" });
      peer.audio.dataset.peer = peer.id;
      $("audio-sink").append(peer.audio);
    }
    if (peer.audio.srcObject !== stream) {
      peer.audio.srcObject = stream;
      dropMeter(peer.meter);
      peer.meter = makeMeter(stream);
    }
    const playing = peer.audio.play();
    if (playing && playing.catch) playing.catch(() => askForSoundTap());
  }

  function askForSoundTap() {
    setMicStatus("Tap anywhere to turn on the sound.", true);
    const resume = () => {
      if (audioCtx) audioCtx.resume().catch(() => {});
      for (const peer of state.peers.values()) if (peer.audio) peer.audio.play().catch(() => {});
      setMicStatus(state.micState === "on" ? "Microphone on." : MIC_BLOCKED, state.micState !== "on");
    };
    document.addEventListener("click", resume, { once: true });
  }

  // --- signaling -----------------------------------------------------------------------------

  function handleMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    const from = typeof msg.from === "string" ? state.peers.get(msg.from) : null;
    switch (msg.type) {
      case "welcome":
        state.phase = "joined";
        state.joined = true;
        state.selfId = msg.id;
        setConn("joined", "joined");
        clearError();
        renderControls();
        for (const info of list(msg.peers)) addPeer(info);
        renderParticipants();
        // Mesh rule: the newcomer offers to everyone already there.
        for (const peer of state.peers.values()) offerTo(peer);
        fetchNotes();
        break;
      case "peer-joined":
        addPeer(msg.peer); // they will send us an offer
        renderParticipants();
        break;
      case "peer-left":
        removePeer(msg.id);
        renderParticipants();
        break;
      case "offer":
        if (typeof msg.from === "string" && typeof msg.sdp === "string") {
          const peer = from || addPeer({ id: msg.from, name: "someone", kind: "person" });
          if (!from) renderParticipants();
          answerOffer(peer, msg.sdp);
        }
        break;
      case "answer":
        if (from) applyAnswer(from, msg.sdp);
        break;
      case "candidate":
        if (from) addCandidate(from, msg.candidate);
        break;
      case "speaking":
        if (from) {
          from.remoteSpeaking = msg.speaking === true;
          renderSpeaking();
        }
        break;
      case "caption":
        // A bot may caption other people's speech: then `speaker` names them.
        addCaption(
          msg.speaker ? `${msg.from}:${msg.speaker}` : msg.from,
          typeof msg.speaker === "string" ? msg.speaker : from ? from.name : "Someone",
          str(msg.text),
          msg.final === true,
        );
        break;
      case "notes":
        renderNotes(msg.notes);
        break;
      case "error":
        showError(str(msg.message) || str(msg.code), str(msg.code));
        if (msg.ref === "join" && !state.joined) teardown(); // e.g. room-full, bad-name
        break;
      default:
        break; // pong and anything newer than this page
    }
  }

  async function join(ev) {
    if (ev) ev.preventDefault();
    if (state.phase !== "idle") return;
    const name = $("name").value.trim();
    if (!validName(name)) {
      showError("Please enter a name of 1–64 characters.", "bad-name");
      $("name").focus();
      return;
    }
    if (!state.room) {
      showError("This page's address has no valid room name.", "bad-room");
      return;
    }
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      /* private mode: just do not remember */
    }
    state.name = name;
    state.phase = "joining";
    clearError();
    setConn("connecting", "connecting…");
    renderControls();
    ensureAudioContext();
    await startMic();
    if (state.phase !== "joining") return; // left while the mic prompt was open
    connect();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${proto}//${location.host}/ws`);
    ws = socket;
    socket.onopen = () => send({ type: "join", room: state.room, name: state.name, kind: state.kind });
    socket.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      handleMessage(msg);
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return; // a socket we already left
      const wasActive = state.phase !== "idle";
      teardown();
      if (wasActive) {
        const why = ev.reason ? `: ${ev.reason}` : "";
        showError(`Disconnected from the room server (${ev.code}${why}).`, "disconnected");
        setConn("error", "disconnected");
      }
    };
  }

  function leave() {
    if (state.phase === "idle") return;
    send({ type: "leave" });
    teardown();
  }

  function teardown() {
    const socket = ws;
    ws = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "left");
    for (const peer of state.peers.values()) closePeerConnection(peer);
    state.peers.clear();
    stopMic();
    state.phase = "idle";
    state.joined = false;
    state.selfId = null;
    setConn("idle", "not joined");
    setMicStatus("Microphone: asked for when you join.");
    renderControls();
    renderParticipants();
    refreshRoomSummary();
  }

  // --- rendering: participants and captions --------------------------------------------------

  function renderControls() {
    const busy = state.phase !== "idle";
    $("join").hidden = busy;
    $("leave").hidden = !busy;
    $("name").disabled = busy;
    $("room-summary").hidden = busy; // the live list above says it better once joined
  }

  function renderParticipants() {
    const ul = $("participants");
    ul.replaceChildren();
    if (state.phase === "joined") {
      const you = state.micState === "on" ? "" : "listening only";
      ul.append(row("self", state.name, "you", you));
    }
    for (const peer of state.peers.values()) {
      const st = CONNECTION_LABELS[peer.connectionState] ?? peer.connectionState;
      ul.append(row(peer.id, peer.name, peer.kind === "bot" ? "bot" : null, st));
    }
    renderSpeaking();
  }

  const CONNECTION_LABELS = {
    new: "connecting…",
    connecting: "connecting…",
    connected: "",
    disconnected: "reconnecting…",
    failed: "no audio link",
    closed: "",
  };

  function row(id, name, badge, stateText) {
    const li = el(
      "li",
      { "data-peer": id },
      el("span", { className: "dot", "aria-hidden": "true" }),
      el("span", { className: "who", text: name }),
      badge ? el("span", { className: `badge ${badge}`, text: badge }) : null,
      stateText ? el("span", { className: "state", text: stateText }) : null,
    );
    return li;
  }

  function peerSpeaking(peer) {
    return peer.remoteSpeaking || !!(peer.meter && peer.meter.vad.speaking);
  }

  function renderSpeaking() {
    for (const li of $("participants").children) {
      const id = li.dataset.peer;
      const peer = state.peers.get(id);
      const on = id === "self" ? state.selfSpeaking : !!peer && peerSpeaking(peer);
      li.classList.toggle("speaking", on);
    }
  }

  async function refreshRoomSummary() {
    const out = $("room-summary");
    if (state.phase !== "idle" || !state.room) {
      out.textContent = "";
      return;
    }
    try {
      const res = await fetch(`/api/rooms/${encodeURIComponent(state.room)}`, { cache: "no-store" });
      if (!res.ok || state.phase !== "idle") return;
      const info = await res.json();
      const people = list(info.participants).map((p) => (p.kind === "bot" ? `${p.name} (bot)` : p.name));
      out.textContent = people.length
        ? `${people.length} in this room: ${people.join(", ")}`
        : "Nobody is here yet.";
    } catch {
      out.textContent = "";
    }
  }

  function addCaption(fromId, name, text, final) {
    let index = -1;
    for (let i = state.captions.length - 1; i >= 0; i--) {
      if (state.captions[i].from === fromId) {
        index = i;
        break;
      }
    }
    if (index >= 0 && !state.captions[index].final) {
      state.captions[index] = { from: fromId, name, text, final };
    } else {
      state.captions.push({ from: fromId, name, text, final });
      if (state.captions.length > MAX_CAPTIONS) state.captions.splice(0, state.captions.length - MAX_CAPTIONS);
    }
    renderCaptions();
  }

  function renderCaptions() {
    const ol = $("captions");
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 24;
    ol.replaceChildren(
      ...state.captions.map((c) =>
        el("li", { className: c.final ? "" : "partial" }, el("span", { className: "speaker", text: `${c.name}: ` }), c.text),
      ),
    );
    if (atBottom) ol.scrollTop = ol.scrollHeight;
  }

  // --- notes ---------------------------------------------------------------------------------

  async function fetchNotes() {
    // Asks whether there are notes first, so an empty room logs no 404 in the console.
    if (!state.room) return;
    const base = `/api/rooms/${encodeURIComponent(state.room)}`;
    try {
      const info = await fetch(base, { cache: "no-store" });
      if (!info.ok || !(await info.json()).has_notes) return;
      const res = await fetch(`${base}/notes`, { cache: "no-store" });
      if (res.ok) renderNotes(await res.json());
    } catch {
      /* server away: the panel keeps what it has */
    }
  }

  function agendaTime(item, nowS) {
    const status = str(item.status);
    const box = isNum(item.timebox_s) ? item.timebox_s : null;
    if (status === "active" && isNum(item.started_at_wall)) {
      const elapsed = nowS - item.started_at_wall;
      if (box === null) return { text: `${fmtDuration(elapsed)} elapsed`, over: false };
      const left = box - elapsed;
      return left >= 0
        ? { text: `${fmtDuration(left)} left`, over: false }
        : { text: `${fmtDuration(-left)} over`, over: true };
    }
    if (status === "done" && isNum(item.started_at_wall) && isNum(item.ended_at_wall)) {
      return { text: `took ${fmtDuration(item.ended_at_wall - item.started_at_wall)}`, over: false };
    }
    return { text: box !== null ? `${fmtDuration(box)}` : "", over: false };
  }

  function renderNotes(notes) {
    if (!notes || typeof notes !== "object" || Array.isArray(notes)) return;
    state.notes = notes;
    $("notes-empty").hidden = true;
    $("download-notes").disabled = false;
    $("notes-title").textContent = str(notes.title) || "Meeting notes";

    const nowS = Date.now() / 1000;
    $("agenda").replaceChildren(
      ...objects(notes.agenda).map((item, i) => {
        const status = ["pending", "active", "done"].includes(item && item.status) ? item.status : "pending";
        const time = agendaTime(item || {}, nowS);
        const li = el(
          "li",
          { className: status + (time.over ? " over" : ""), "data-index": String(i) },
          str(item && item.title) || "(untitled)",
          el("span", { className: "time", text: time.text }),
        );
        if (status === "active") li.setAttribute("aria-current", "step");
        return li;
      }),
    );

    $("actions").replaceChildren(
      ...objects(notes.action_items).map((a) => {
        a = a || {};
        const due = str(a.due_text) || str(a.due_date);
        return el(
          "li",
          { className: str(a.status) === "done" ? "done" : "" },
          el("span", { className: "owner", text: str(a.owner) || "Unassigned" }),
          `: ${str(a.text)}`,
          due ? el("span", { className: "due", text: ` (due ${due})` }) : null,
        );
      }),
    );

    $("decisions").replaceChildren(
      ...objects(notes.decisions).map((d) => {
        d = d || {};
        return el("li", null, str(d.text), d.speaker ? el("span", { className: "due", text: ` — ${d.speaker}` }) : null);
      }),
    );
  }

  function tickAgenda() {
    // Counts the active item's remaining time down locally between notes updates.
    if (!state.notes) return;
    const nowS = Date.now() / 1000;
    const items = objects(state.notes.agenda);
    for (const li of $("agenda").children) {
      const item = items[Number(li.dataset.index)];
      if (!item || item.status !== "active") continue;
      const time = agendaTime(item, nowS);
      li.querySelector(".time").textContent = time.text;
      li.classList.toggle("over", time.over);
    }
  }

  function oneLine(v) {
    return str(v).replace(/\s+/g, " ").trim();
  }

  function notesMarkdown(notes) {
    const nowS = Date.now() / 1000;
    const out = [`# ${oneLine(notes.title) || "Meeting notes"}`, ""];
    out.push(`_Room ${state.room}, exported ${new Date().toLocaleString()}_`, "");
    const agenda = objects(notes.agenda);
    if (agenda.length) {
      out.push("## Agenda", "");
      for (const item of agenda) {
        const it = item || {};
        const mark = it.status === "done" ? "x" : " ";
        const time = agendaTime(it, nowS).text;
        const active = it.status === "active" ? " **(now)**" : "";
        out.push(`- [${mark}] ${oneLine(it.title) || "(untitled)"}${time ? ` (${time})` : ""}${active}`);
      }
      out.push("");
    }
    const decisions = objects(notes.decisions);
    if (decisions.length) {
      out.push("## Decisions", "");
      for (const d of decisions) {
        const it = d || {};
        out.push(`- ${oneLine(it.text)}${it.speaker ? ` (${oneLine(it.speaker)})` : ""}`);
      }
      out.push("");
    }
    const actions = objects(notes.action_items);
    if (actions.length) {
      out.push("## Action items", "");
      for (const a of actions) {
        const it = a || {};
        const due = oneLine(it.due_text) || oneLine(it.due_date);
        const mark = it.status === "done" ? "x" : " ";
        out.push(`- [${mark}] **${oneLine(it.owner) || "Unassigned"}**: ${oneLine(it.text)}${due ? ` (due ${due})` : ""}`);
      }
      out.push("");
    }
    const extra = list(notes.notes);
    if (extra.length) {
      out.push("## Notes", "");
      for (const n of extra) {
        const text = n && typeof n === "object" ? oneLine(n.text) : oneLine(n);
        const who = n && typeof n === "object" && n.speaker ? ` (${oneLine(n.speaker)})` : "";
        if (text) out.push(`- ${text}${who}`);
      }
      out.push("");
    }
    const transcript = objects(notes.transcript);
    if (transcript.length) {
      out.push("## Transcript", "");
      for (const line of transcript) {
        const it = line || {};
        const at = isNum(it.wall_time) ? `[${new Date(it.wall_time * 1000).toLocaleTimeString()}] ` : "";
        out.push(`- ${at}**${oneLine(it.speaker) || "?"}**: ${oneLine(it.text)}`);
      }
      out.push("");
    }
    return out.join("\n");
  }

  function downloadNotes() {
    if (!state.notes) return;
    const blob = new Blob([notesMarkdown(state.notes)], { type: "text/markdown;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `${state.room || "meeting"}-notes.md` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // --- start ---------------------------------------------------------------------------------

  function init() {
    $("room-name").textContent = state.room ? `Room ${state.room}` : "No room";
    document.title = state.room ? `${state.room} · meetbot` : "meetbot";
    try {
      $("name").value = localStorage.getItem(NAME_KEY) || "";
    } catch {
      /* storage unavailable */
    }
    $("join-form").addEventListener("submit", join);
    $("leave").addEventListener("click", leave);
    $("download-notes").addEventListener("click", downloadNotes);
    window.addEventListener("pagehide", leave);
    setInterval(tickAgenda, 1000);
    renderControls();
    refreshRoomSummary();
    fetchNotes();
  }

  // Debug handle for browser tests and the console.
  window.meetbot = {
    state,
    join,
    leave,
    notesMarkdown: () => (state.notes ? notesMarkdown(state.notes) : ""),
    snapshot: () => ({
      room: state.room,
      joined: state.joined,
      selfId: state.selfId,
      mic: state.micState,
      lastError: state.lastError,
      peers: [...state.peers.values()].map((p) => ({
        id: p.id,
        name: p.name,
        kind: p.kind,
        connectionState: p.connectionState,
        speaking: peerSpeaking(p),
        hasAudio: !!p.audio,
      })),
      captions: state.captions.slice(),
    }),
  };

  init();
})();
