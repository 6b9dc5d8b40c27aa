/*
 * Instant listening on the track page. While a render plays, a change to the mixer (fader, mute, solo,
 * preset, "Space for my voice", sound, click) is heard at the same place in the song within a fraction
 * of a second; a new key, tempo, count-in or arrangement starts the new variant from the start as soon
 * as its first seconds exist. No Render press is needed.
 *
 * How: 150 ms after the last change, POST /api/renders/ with the form's settings (exactly what the
 * Render button sends, so Render and Download give the file that is heard) plus `listen_from`; open the
 * render's stream_url?from=… in a second <audio>; when it can play, start it as the song reaches that
 * place, crossfade, and hand it to the player (player.replaceAudio), which keeps showing song time.
 *
 * Where a stream starts: the server starts at the MP3 frame at or before `from` and says where in
 * X-Stream-From. An <audio> cannot read response headers, and fetching the stream a second time just
 * for one header would hold a second listener (a web thread) per change; so the player takes the
 * stream to start half a frame before `from`: off by at most 13 ms (a frame is 1152 samples at
 * 44.1 kHz), far inside the crossfade and invisible on the waveform.
 *
 * A stream that can play only later than the song has reached (a render that cannot stream until it is
 * done) is opened again further on, up to a few times; the lead grows with the delays seen.
 * Without fetch, Promise or MP3 in <audio> nothing here runs (Render, then play, as before); a server
 * that answers no stream_url gets the same flow with the finished file.
 */
(function () {
  "use strict";

  var probe = document.createElement("audio");
  if (!window.fetch || !window.Promise || !probe.canPlayType || !probe.canPlayType("audio/mpeg")) {
    return;
  }

  var DEBOUNCE_MS = 150;
  var FADE_MS = 100;
  var POLL_MS = 600;
  var FRAME_S = 1152 / 44100;
  var LEAD_MIN_S = 0.2;
  var LEAD_MAX_S = 3;
  // The time from play() to sound; starting a stream this early lines it up with the song.
  var START_LATENCY_S = 0.01;
  // Later than this, the new stream would audibly repeat music: it is opened again further on.
  var LATE_TOLERANCE_S = 0.06;
  var MAX_REAIMS = 3;
  // Settings that change where things happen in time: the new variant starts from the beginning.
  var TIMELINE_KEYS = ["transpose", "tempo", "count_in"];

  var state = {
    timer: null,
    seq: 0,
    lead: 0.6, // measured: about 0.5 s to a mix change's first byte, 0.1 s to ask; then it adapts
    heard: null, // {id, info}: the render the player plays (info as GET /api/renders/{id}/)
    requestedKey: null, // the settings last asked for, so an unchanged form asks nothing
    candidate: null, // the stream loading to take over
    abort: null,
    pollTimer: null,
    override: null, // settings another script asked to hear (e.g. an arrangement)
  };

  // --- the page ----------------------------------------------------------------------------------

  function player() {
    return window.Backtrack && window.Backtrack.currentPlayer ? window.Backtrack.currentPlayer() : null;
  }

  function form() {
    return document.getElementById("render-form");
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function api(method, url, body, signal) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal,
    }).then(function (response) {
      return response.json().then(
        function (data) {
          return { ok: response.ok, status: response.status, data: data };
        },
        function () {
          return { ok: response.ok, status: response.status, data: null };
        }
      );
    });
  }

  function reason(data) {
    if (!data) return "Something went wrong; try again.";
    if (typeof data.detail === "string") return data.detail;
    return Object.keys(data)
      .map(function (key) {
        return [].concat(data[key]).join(" ");
      })
      .join(" ");
  }

  // Python's round(x, 3) (ties to even on the exact binary value), so the tempo ratio sent here equals
  // the one the Render button's form makes, and the same settings find the same render.
  function pyRound3(x) {
    var scaled = x * 1000;
    var low = Math.floor(scaled);
    if (Math.abs(scaled - low - 0.5) > 1e-6 || typeof BigInt === "undefined") {
      return Math.round(scaled) / 1000;
    }
    var view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    var bits = view.getBigUint64(0);
    var exponent = Number((bits >> BigInt(52)) & BigInt(0x7ff));
    var mantissa = bits & ((BigInt(1) << BigInt(52)) - BigInt(1));
    if (exponent) mantissa |= BigInt(1) << BigInt(52);
    var power = (exponent || 1) - 1075;
    var lhs = mantissa * BigInt(2000); // x * 2000 against 2 * low + 1, exactly
    var rhs = BigInt(2 * low + 1);
    if (power >= 0) lhs <<= BigInt(power);
    else rhs <<= BigInt(-power);
    var k = lhs < rhs ? low : lhs > rhs ? low + 1 : low % 2 === 0 ? low : low + 1;
    return k / 1000;
  }

  // The render settings of the form, as RenderForm.settings() makes them (tracks/forms.py).
  function formSettings() {
    var f = form();
    if (!f || !f.dataset.revisionId) return null;
    var field = function (name) {
      return f.elements.namedItem(name);
    };
    var checked = function (name) {
      var input = field(name);
      return Boolean(input && input.checked);
    };
    var originalBpm = parseFloat(f.dataset.originalBpm) || 120;
    var bpm = parseFloat(field("tempo") ? field("tempo").value : "");
    if (!isFinite(bpm) || bpm <= 0) return null;
    var mix = {};
    f.querySelectorAll("input[data-gain]").forEach(function (fader) {
      var index = fader.name.replace("gain_", "");
      var entry = {
        gain_db: parseFloat(fader.value) || 0,
        mute: checked("mute_" + index),
        solo: checked("solo_" + index),
      };
      if (entry.gain_db !== 0 || entry.mute || entry.solo) mix[index] = entry;
    });
    var space = field("space_for_voice");
    var settings = {
      revision: Number(f.dataset.revisionId),
      transpose: parseInt(field("transpose") ? field("transpose").value : "0", 10) || 0,
      tempo: pyRound3(bpm / originalBpm),
      mix: mix,
      click: checked("click"),
      cues: checked("cues"),
      count_in: parseInt(field("count_in") ? field("count_in").value : "0", 10) || 0,
      sound: field("sound") ? field("sound").value : "",
      space_for_voice: checked("space_voice") ? parseFloat(space && space.value) || 0 : 0,
    };
    var dynamics = field("dynamics_mode");
    if (dynamics) {
      // "", "build", or one level per section name (the slider's label), as RenderForm sends it.
      settings.dynamics = dynamics.value;
      if (dynamics.value === "sections") {
        settings.dynamics = {};
        f.querySelectorAll("input[data-dynamics]").forEach(function (slider) {
          var label = f.querySelector('label[for="' + slider.id + '"]');
          if (label) settings.dynamics[label.textContent.trim()] = parseFloat(slider.value) || 0;
        });
      }
    }
    return settings;
  }

  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value && typeof value === "object") {
      return (
        "{" +
        Object.keys(value)
          .sort()
          .map(function (key) {
            return JSON.stringify(key) + ":" + canonical(value[key]);
          })
          .join(",") +
        "}"
      );
    }
    return JSON.stringify(value);
  }

  function ahead(seconds) {
    return Math.max(0, Math.round(seconds * 1000) / 1000);
  }

  // Where a stream asked `from` starts in the song (see the top): half a frame before.
  function streamOffset(from) {
    return from > 0 ? Math.max(0, from - FRAME_S / 2) : 0;
  }

  function withFrom(url, seconds) {
    if (!(seconds > 0)) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "from=" + seconds.toFixed(3);
  }

  function fileUrl(renderId) {
    return "/renders/" + renderId + "/audio/";
  }

  function variantLabel(info) {
    var parts = [];
    if (info.key) parts.push(info.key);
    if (info.tempo_bpm) parts.push(Math.round(info.tempo_bpm * 10) / 10 + " BPM");
    return parts.join(", ");
  }

  // How much of the render heard is done; the bar shows only once the worker reports progress.
  function showRendering(info, prefix) {
    var fraction = info.progress || 0;
    var text = fraction > 0 ? "Rendered so far: " + Math.round(fraction * 100) + "%" : "Rendering the rest…";
    showProgress(prefix ? prefix + " " + text : text, fraction > 0 ? fraction : undefined);
  }

  // --- what the player shows -----------------------------------------------------------------------

  function liveParts(root) {
    return {
      box: root.querySelector("[data-live-status]"),
      text: root.querySelector("[data-live-text]"),
      bar: root.querySelector("[data-live-progress]"),
      announce: root.querySelector("[data-live-announce]"),
    };
  }

  function showProgress(text, fraction) {
    var p = player();
    if (!p) return;
    var parts = liveParts(p.root);
    if (!parts.box) return;
    if (text === null) {
      parts.box.hidden = true;
      return;
    }
    parts.box.hidden = false;
    parts.text.textContent = text;
    if (parts.bar) {
      var percent = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
      parts.bar.hidden = fraction === undefined;
      parts.bar.setAttribute("aria-valuenow", String(percent));
      parts.bar.firstElementChild.style.width = percent + "%";
    }
  }

  function announce(text) {
    var p = player();
    var parts = p ? liveParts(p.root) : null;
    if (parts && parts.announce) parts.announce.textContent = text;
  }

  // The player's summary, Download and other-format links follow the render heard.
  function showRender(root, info) {
    var oldId = root.dataset.renderId;
    root.dataset.renderId = String(info.id);
    if (info.duration_s) root.dataset.duration = String(info.duration_s);
    var keyLabel = root.querySelector("[data-summary-key]");
    if (keyLabel && info.key) keyLabel.textContent = info.key;
    var bpmLabel = root.querySelector("[data-summary-bpm]");
    if (bpmLabel && info.tempo_bpm) bpmLabel.textContent = Math.round(info.tempo_bpm * 10) / 10 + " BPM";
    var done = info.status === "done";
    var stateTag = root.querySelector("[data-summary-state]");
    if (stateTag) {
      stateTag.textContent = done ? "Ready" : "Playing while it renders";
      stateTag.className = done ? "tag ok" : "tag neutral";
    }
    root.querySelectorAll("form[action]").forEach(function (f) {
      var action = f.getAttribute("action");
      var updated = action.replace("/renders/" + oldId + "/", "/renders/" + info.id + "/");
      if (updated !== action) f.setAttribute("action", updated);
      // Download gives the file being heard, so it waits until that file is finished.
      f.querySelectorAll("button").forEach(function (button) {
        button.disabled = !done;
      });
    });
  }

  function rememberInUrl(renderId) {
    if (!window.history || !window.history.replaceState) return;
    var url = new URL(window.location.href);
    url.searchParams.set("render", String(renderId));
    window.history.replaceState(window.history.state, "", url.toString());
  }

  // --- asking for a render and following it --------------------------------------------------------

  function schedule() {
    var p = player();
    if (!p || !state.heard || !(p.isPlaying() || state.candidate)) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(run, DEBOUNCE_MS);
  }

  function desiredSettings() {
    var body = formSettings();
    if (!body) return null;
    var heard = state.heard.info;
    // A mix change of an arranged render keeps its arrangement.
    if (heard.arrangement && heard.arrangement.length) body.arrangement = heard.arrangement;
    if (state.override) {
      Object.keys(state.override).forEach(function (key) {
        body[key] = state.override[key];
      });
    }
    return body;
  }

  function run() {
    state.timer = null;
    var p = player();
    if (!p || !state.heard) return;
    var body = desiredSettings();
    if (!body) return;
    var key = canonical(body);
    if (key === state.requestedKey) return;
    state.requestedKey = key;
    var heard = state.heard.info;
    var restart =
      TIMELINE_KEYS.some(function (name) {
        return Number(body[name]) !== Number(heard[name]);
      }) || canonical(body.arrangement || []) !== canonical(heard.arrangement || []);
    request(body, restart ? 0 : ahead(p.position() + state.lead), restart);
  }

  function request(body, from, restart) {
    var seq = ++state.seq;
    dropCandidate();
    if (state.abort) state.abort.abort();
    state.abort = window.AbortController ? new AbortController() : null;
    var payload = Object.assign({}, body);
    if (from > 0) payload.listen_from = from;
    var asked = performance.now();
    showProgress(restart ? "Preparing the new version…" : "Mixing…");
    api("POST", "/api/renders/", payload, state.abort ? state.abort.signal : undefined).then(
      function (result) {
        if (seq !== state.seq) return;
        if (!result.ok) {
          state.requestedKey = null;
          showProgress(reason(result.data));
          return;
        }
        var info = result.data;
        if (state.heard && info.id === state.heard.id) {
          showProgress(null); // back to what is playing: follow it again until it is done
          if (info.status !== "done") poll(info.id, seq);
          return;
        }
        if (info.status === "failed") {
          showProgress(info.error || "The render failed.");
          return;
        }
        var c = {
          seq: seq,
          info: info,
          body: body,
          restart: restart,
          from: from,
          asked: asked,
          reaims: 0,
        };
        state.candidate = c;
        open(c);
        poll(info.id, seq);
      },
      function (error) {
        if (seq === state.seq && error && error.name !== "AbortError") {
          state.requestedKey = null;
          showProgress("Could not reach the server; press Render to try again.");
        }
      }
    );
  }

  function poll(renderId, seq) {
    clearTimeout(state.pollTimer);
    api("GET", "/api/renders/" + renderId + "/").then(function (result) {
      if (seq !== state.seq || !result.ok) return;
      var info = result.data;
      var p = player();
      var c = state.candidate;
      if (c && c.info.id === info.id) {
        c.info = info;
        if (c.waitingForFile && info.status === "done") open(c);
      }
      if (state.heard && state.heard.id === info.id) {
        state.heard.info = info;
        if (p) {
          showRender(p.root, info);
          if (info.status === "done") {
            p.setPeaks(info.peaks);
            if (info.duration_s) p.fallbackDuration = info.duration_s;
            p.draw();
          }
        }
      }
      if (info.status === "failed") {
        dropCandidate();
        state.requestedKey = null;
        showProgress(info.error || "The render failed.");
        return;
      }
      if (info.status === "done") {
        if (!state.candidate) showProgress(null);
        return;
      }
      if (state.candidate && state.candidate.restart) {
        showRendering(info, "Preparing " + variantLabel(info) + "…");
      } else if (!state.candidate && state.heard && state.heard.id === info.id) {
        showRendering(info);
      }
      state.pollTimer = setTimeout(function () {
        poll(renderId, seq);
      }, POLL_MS);
    });
  }

  // --- the second <audio> and the crossfade --------------------------------------------------------

  function dropCandidate() {
    var c = state.candidate;
    state.candidate = null;
    if (!c) return;
    clearTimeout(c.startTimer);
    if (c.audio) {
      c.audio.pause();
      c.audio.removeAttribute("src");
      c.audio.load(); // closes the stream's connection
      c.audio.remove();
    }
  }

  function open(c) {
    var p = player();
    if (!p) return;
    if (c.audio) {
      c.audio.pause();
      c.audio.removeAttribute("src");
      c.audio.load();
      c.audio.remove();
    }
    c.waitingForFile = false;
    var info = c.info;
    var audio = document.createElement("audio");
    audio.preload = "auto";
    audio.hidden = true;
    audio.setAttribute("aria-hidden", "true");
    audio.volume = 0;
    audio.muted = p.audio.muted;
    audio.dataset.renderId = String(info.id);
    c.audio = audio;
    if (info.stream_url) {
      c.isStream = true;
      c.offset = streamOffset(c.from);
      audio.src = withFrom(info.stream_url, c.from);
    } else if (info.status === "done") {
      // No streaming on this server: the finished file, which seeks by byte ranges.
      c.isStream = false;
      c.offset = 0;
      audio.src = fileUrl(info.id);
      audio.addEventListener("loadedmetadata", function () {
        if (c.jumpTo !== undefined) audio.currentTime = c.jumpTo;
        else if (!c.restart) audio.currentTime = p.position() + START_LATENCY_S;
      }, { once: true });
    } else {
      c.waitingForFile = true; // poll() opens it once the file is done
      c.audio = null;
      return;
    }
    p.root.appendChild(audio);
    audio.addEventListener("canplay", function () {
      if (state.candidate === c) ready(c);
    }, { once: true });
    audio.addEventListener("error", function () {
      if (state.candidate !== c) return;
      // The stream answers 409 with the reason before any byte when the render failed.
      var failed = "This version cannot play here; press Render.";
      fetch(audio.src, { credentials: "same-origin" })
        .then(function (response) {
          if (String(response.headers.get("Content-Type")).indexOf("json") < 0) {
            if (response.body) response.body.cancel(); // audio after all: do not download it
            showProgress(failed);
            return;
          }
          return response.json().then(function (data) {
            showProgress(reason(data));
          });
        })
        .catch(function () {
          showProgress(failed);
        });
      state.candidate = null;
      state.requestedKey = null;
      audio.remove();
    });
  }

  function ready(c) {
    var p = player();
    if (!p) return;
    var delay = (performance.now() - c.asked) / 1000;
    if (c.isStream && !c.restart && c.jumpTo === undefined && c.reaims === 0) {
      // Aim the next change as far ahead as this one took to become playable (a stream opened again
      // further on is quicker, as the render is further on: it does not count).
      state.lead = Math.max(LEAD_MIN_S, Math.min(LEAD_MAX_S, 0.5 * state.lead + 0.5 * (delay + 0.1)));
    }
    if (!c.isStream || c.restart || c.jumpTo !== undefined || !p.isPlaying()) {
      if (!c.isStream && !c.restart && c.jumpTo === undefined) {
        c.audio.currentTime = p.position() + START_LATENCY_S; // the file seeks: line it up again
      }
      start(c, true);
      return;
    }
    var wait = c.offset - p.position();
    if (wait > START_LATENCY_S) {
      c.startTimer = setTimeout(function () {
        if (state.candidate === c) start(c);
      }, (wait - START_LATENCY_S) * 1000);
      return;
    }
    if (-wait > LATE_TOLERANCE_S && c.reaims < MAX_REAIMS) {
      // Playable only after the song passed its start: open it again further on, where it now is
      // (or soon will be) ready, instead of repeating music.
      c.reaims += 1;
      c.from = ahead(p.position() + state.lead);
      c.asked = performance.now();
      open(c);
      return;
    }
    start(c, true);
  }

  // `checked`: ready() has just lined it up; from a timer, the song may have moved meanwhile.
  function start(c, checked) {
    var p = player();
    if (!p) return;
    var wasPlaying = p.isPlaying();
    var aligned = c.isStream && !c.restart && c.jumpTo === undefined;
    if (!checked && aligned && wasPlaying && Math.abs(c.offset - p.position()) > LATE_TOLERANCE_S) {
      ready(c); // the song moved meanwhile (a seek in the file): wait or aim again
      return;
    }
    if (!wasPlaying) {
      finish(c, p, p.audio.volume);
      return;
    }
    c.audio.addEventListener("playing", function () {
      if (state.candidate === c) crossfade(c);
    }, { once: true });
    var played = c.audio.play();
    if (played && played.catch) {
      played.catch(function () {
        if (state.candidate === c) finish(c, p, p.audio.volume); // playback refused: swap, paused
      });
    }
  }

  function crossfade(c) {
    var p = player();
    if (!p) return;
    var old = p.audio;
    var volume = old.volume;
    c.drift = c.offset + c.audio.currentTime - p.position();
    var began = performance.now();
    // Equal-power curves; on browsers where volume is read-only (iOS) this is a cut.
    var tick = setInterval(function () {
      var k = Math.min(1, (performance.now() - began) / FADE_MS);
      try {
        old.volume = volume * Math.cos((k * Math.PI) / 2);
        c.audio.volume = volume * Math.sin((k * Math.PI) / 2);
      } catch (error) {
        k = 1;
      }
      if (k >= 1) {
        clearInterval(tick);
        if (state.candidate === c) finish(c, p, volume);
      }
    }, 15);
  }

  function finish(c, p, volume) {
    state.candidate = null;
    var before = state.heard ? state.heard.info : null;
    var info = c.info;
    var duration = info.duration_s;
    if (!duration && before) {
      // Until the render is done its length is known only from the one heard: same timeline, or
      // scaled by the tempo (a count-in or arrangement change is corrected when it is done).
      var previous = p.duration();
      duration = c.restart && before.tempo && info.tempo ? (previous * before.tempo) / info.tempo : previous;
    }
    c.audio.volume = volume;
    p.replaceAudio(c.audio, { offset: c.offset, isStream: c.isStream, duration: duration });
    if (c.jumpTo !== undefined && !c.isStream) p.draw();
    state.heard = { id: info.id, info: info };
    state.override = null; // the arrangement asked for is now the heard render's
    showRender(p.root, info);
    rememberInUrl(info.id);
    if (info.status === "done") {
      p.setPeaks(info.peaks);
      showProgress(null);
    } else {
      showRendering(info);
    }
    if (c.restart) announce("Now playing: " + variantLabel(info) + ".");
    window.Backtrack.lastSwap = {
      renderId: info.id,
      from: c.from,
      offset: c.offset,
      drift: c.drift === undefined ? null : c.drift,
      restart: c.restart,
      reaims: c.reaims,
      statusWhenPlayed: info.status,
      readyAfterS: (performance.now() - c.asked) / 1000,
    };
    document.dispatchEvent(
      new CustomEvent("backtrack:render-changed", {
        detail: { renderId: info.id, timelineChanged: Boolean(c.restart) },
      })
    );
  }

  // A seek outside what the stream holds: the finished file when there is one, else the stream there.
  // A change still on its way is not lost: the jump goes to its render.
  function seekElsewhere(target) {
    if (!state.heard) return;
    var pending = state.candidate && state.candidate.jumpTo === undefined ? state.candidate : null;
    var info = pending ? pending.info : state.heard.info;
    state.seq += 1;
    clearTimeout(state.pollTimer);
    dropCandidate();
    var c = {
      seq: state.seq,
      info: info,
      body: null,
      restart: Boolean(pending && pending.restart),
      from: info.status === "done" ? 0 : ahead(target),
      jumpTo: target,
      asked: performance.now(),
      reaims: 0,
    };
    if (info.status === "done" || !info.stream_url) {
      info = Object.assign({}, info, { stream_url: null });
      c.info = info;
    }
    state.candidate = c;
    open(c);
    if (info.status !== "done") poll(info.id, c.seq);
  }

  // --- wiring --------------------------------------------------------------------------------------

  function follow(p) {
    if (!p || p.seekElsewhere === seekElsewhere) return;
    p.seekElsewhere = seekElsewhere;
    var renderId = p.root.dataset.renderId;
    // A new player (htmx swapped the panel in): what was on its way belonged to the old one.
    state.seq += 1;
    clearTimeout(state.timer);
    clearTimeout(state.pollTimer);
    dropCandidate();
    state.heard = null;
    state.requestedKey = null;
    state.override = null;
    api("GET", "/api/renders/" + renderId + "/").then(function (result) {
      if (result.ok && player() === p && p.root.dataset.renderId === String(result.data.id)) {
        state.heard = { id: result.data.id, info: result.data };
      }
    });
  }

  document.addEventListener("backtrack:player-ready", function () {
    follow(player());
  });
  document.addEventListener("DOMContentLoaded", function () {
    follow(player());
  });

  function inRenderForm(target) {
    return target && target.form && target.form.id === "render-form";
  }

  document.addEventListener("input", function (event) {
    // Sliders while they move; typed numbers wait for their change event.
    if (inRenderForm(event.target) && event.target.type === "range") schedule();
  });
  document.addEventListener("change", function (event) {
    if (inRenderForm(event.target)) schedule();
  });

  // While something plays, Render is "make what I hear": it asks at once, and the player keeps playing
  // (identical settings are one render, so Download then gives this file).
  document.addEventListener(
    "submit",
    function (event) {
      var p = player();
      if (!event.target || event.target.id !== "render-form" || !p || !state.heard || !p.isPlaying()) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      clearTimeout(state.timer);
      run();
      announce("Render asked for what you hear; Download works once it is finished.");
    },
    true
  );

  window.Backtrack = window.Backtrack || {};
  // Other scripts (e.g. an arrangement) can ask to hear settings over the form's; false when nothing
  // plays (then render as usual).
  window.Backtrack.listen = function (settings) {
    var p = player();
    if (!p || !state.heard || !p.isPlaying()) return false;
    state.override = settings || null;
    clearTimeout(state.timer);
    run();
    return true;
  };
})();
