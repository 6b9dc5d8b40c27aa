/*
 * Waveform player for a render: draws the peaks computed at render time (values 0..1 of the mastered
 * audio) on a canvas, seeks on click and with the keyboard (arrows step 5 s, Home/End, Space/Enter
 * play and pause), and shows the comments of the thread pinned to a moment as markers.
 *
 * Markup (templates/tracks/_render_panel.html, once the render is done):
 *   <div class="player" data-player data-render-id="12" data-duration="184.2">
 *     <script type="application/json" id="peaks-data">[0.1, 0.4, ...]</script>
 *     <div class="waveform" tabindex="0" role="slider" ...><canvas></canvas><div class="waveform-markers"></div></div>
 *     <audio controls preload="auto" src="..."></audio>
 *     <span data-time-readout></span>
 *   </div>
 * Any element on the page with data-seek="<seconds>" seeks the player when clicked; those inside
 * #thread (the comment thread) are also drawn as markers. Players are set up on page load and again
 * for content htmx swaps in; window.Backtrack exposes formatTime, currentPlayer and initPlayers.
 *
 * Instant listening (listen.js) may swap the <audio> for a stream that starts part-way into the song:
 * `offset` is the song position of the stream's time 0, so position() = audio.currentTime + offset is
 * what the waveform, markers, readout and keyboard use. A seek outside what the stream can seek goes to
 * `seekElsewhere` (set by listen.js), which opens a new stream (or the finished file) there.
 */
(function () {
  "use strict";

  var PLAYED = "#f2a900";
  var UNPLAYED = "#8f88c9";
  var KEY_STEP_SECONDS = 5;

  function formatTime(seconds) {
    if (!isFinite(seconds) || seconds < 0) {
      seconds = 0;
    }
    var whole = Math.floor(seconds);
    var minutes = Math.floor(whole / 60);
    var rest = whole % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function readPeaks(root) {
    var node = root.querySelector('script[type="application/json"]');
    if (!node) {
      return [];
    }
    try {
      var values = JSON.parse(node.textContent);
      return Array.isArray(values) ? values : [];
    } catch (error) {
      return [];
    }
  }

  function Player(root) {
    this.root = root;
    this.audio = root.querySelector("audio");
    this.wave = root.querySelector(".waveform");
    this.offset = 0;
    this.isStream = false;
    this.seekElsewhere = null;
    this.audioListeners = [];
    this.canvas = this.wave.querySelector("canvas");
    this.markerLayer = this.wave.querySelector(".waveform-markers");
    this.readout = root.querySelector("[data-time-readout]");
    this.peaks = readPeaks(root);
    this.fallbackDuration = parseFloat(root.dataset.duration) || 0;
    this.pendingSeek = null;
    this.bind();
    this.draw();
    this.refreshMarkers();
  }

  Player.prototype.duration = function () {
    var d = this.audio.duration;
    // A stream's own duration is unknown (or only its remainder): the render's length is the song's.
    if (this.offset > 0 || this.isStream) {
      return this.fallbackDuration || (isFinite(d) ? d + this.offset : 0);
    }
    return isFinite(d) && d > 0 ? d : this.fallbackDuration;
  };

  // Where the song is: the stream's time plus where the stream started.
  Player.prototype.position = function () {
    return (this.audio.currentTime || 0) + this.offset;
  };

  Player.prototype.isPlaying = function () {
    return !this.audio.paused && !this.audio.ended;
  };

  Player.prototype.togglePlay = function () {
    if (this.audio.paused) {
      var played = this.audio.play();
      if (played && played.catch) {
        played.catch(function () {});
      }
    } else {
      this.audio.pause();
    }
  };

  // Listen to the current <audio> (again after a swap); the old element's listeners are dropped.
  Player.prototype.attachAudio = function () {
    var self = this;
    this.audioListeners.forEach(function (entry) {
      entry[0].removeEventListener(entry[1], entry[2]);
    });
    this.audioListeners = [];
    var audio = this.audio;
    ["timeupdate", "seeked", "loadedmetadata", "durationchange", "play", "pause", "ended"].forEach(function (name) {
      var handler = function () {
        if (name === "loadedmetadata" && self.pendingSeek !== null) {
          audio.currentTime = Math.max(0, self.pendingSeek - self.offset);
          self.pendingSeek = null;
        }
        self.draw();
        if (name === "seeked" || name === "loadedmetadata" || name === "durationchange") {
          self.refreshMarkers();
        }
        if (name === "play" || name === "pause" || name === "ended") {
          self.syncToggle();
        }
      };
      audio.addEventListener(name, handler);
      self.audioListeners.push([audio, name, handler]);
    });
    this.syncToggle();
  };

  // Put a new <audio> in place of the current one (listen.js, after its crossfade). `offset` is the song
  // position of the new element's time 0; `isStream` says it cannot seek far (no byte ranges).
  Player.prototype.replaceAudio = function (audio, options) {
    var old = this.audio;
    var toggle = this.root.querySelector("[data-play-toggle]");
    var hadFocus = document.activeElement && (document.activeElement === old || document.activeElement === toggle);
    this.offset = options.offset || 0;
    this.isStream = Boolean(options.isStream);
    if (options.duration) {
      this.fallbackDuration = options.duration;
    }
    // The native controls would show the stream's own clock, not the song's: the page's toggle does.
    audio.controls = !this.isStream && this.offset === 0;
    audio.hidden = false;
    audio.removeAttribute("aria-hidden");
    if (old && old !== audio) {
      if (old.parentNode) {
        old.parentNode.insertBefore(audio, old);
      }
      old.pause();
      // Dropping the source closes its connection, so a stream left behind does not keep downloading.
      old.removeAttribute("src");
      old.load();
      old.remove();
    }
    this.audio = audio;
    this.pendingSeek = null;
    this.attachAudio();
    this.draw();
    this.refreshMarkers();
    if (hadFocus) {
      // Keep a keyboard user where they were: on whichever play control is shown now.
      (audio.controls || !toggle ? audio : toggle).focus();
    }
  };

  Player.prototype.setPeaks = function (peaks) {
    if (Array.isArray(peaks) && peaks.length) {
      this.peaks = peaks;
      this.draw();
    }
  };

  Player.prototype.syncToggle = function () {
    var toggle = this.root.querySelector("[data-play-toggle]");
    if (!toggle) {
      return;
    }
    var showToggle = !this.audio.controls;
    toggle.hidden = !showToggle;
    var playing = !this.audio.paused && !this.audio.ended;
    toggle.textContent = playing ? "Pause" : "Play";
  };

  Player.prototype.bind = function () {
    var self = this;
    this.wave.addEventListener("click", function (event) {
      var box = self.wave.getBoundingClientRect();
      var fraction = (event.clientX - box.left) / box.width;
      self.seek(Math.max(0, Math.min(1, fraction)) * self.duration());
    });
    this.wave.addEventListener("keydown", function (event) {
      var now = self.position();
      var handled = true;
      if (event.key === "ArrowRight" || event.key === "ArrowUp") {
        self.seek(now + KEY_STEP_SECONDS);
      } else if (event.key === "ArrowLeft" || event.key === "ArrowDown") {
        self.seek(now - KEY_STEP_SECONDS);
      } else if (event.key === "Home") {
        self.seek(0);
      } else if (event.key === "End") {
        self.seek(self.duration());
      } else if (event.key === " " || event.key === "Enter") {
        self.togglePlay();
      } else {
        handled = false;
      }
      if (handled) {
        event.preventDefault();
      }
    });
    this.attachAudio();
    var toggle = this.root.querySelector("[data-play-toggle]");
    if (toggle) {
      toggle.addEventListener("click", function () {
        self.togglePlay();
      });
    }
    window.addEventListener("resize", function () {
      self.draw();
    });
  };

  function canSeek(audio, seconds) {
    var ranges = audio.seekable;
    for (var i = 0; ranges && i < ranges.length; i++) {
      if (seconds >= ranges.start(i) && seconds <= ranges.end(i) && ranges.end(i) > ranges.start(i)) {
        return true;
      }
    }
    return false;
  }

  Player.prototype.seek = function (seconds) {
    var target = Math.max(0, Math.min(seconds, this.duration() || seconds));
    var local = target - this.offset;
    if (this.isStream || this.offset > 0) {
      if (local >= 0 && canSeek(this.audio, local)) {
        this.audio.currentTime = local;
      } else if (this.seekElsewhere) {
        this.seekElsewhere(target);
      }
    } else if (this.audio.readyState >= 1) {
      this.audio.currentTime = target;
    } else {
      this.pendingSeek = target;
      this.audio.load();
    }
    this.draw(target);
  };

  Player.prototype.draw = function (atSeconds) {
    var canvas = this.canvas;
    var ratio = window.devicePixelRatio || 1;
    var width = this.wave.clientWidth;
    var height = this.wave.clientHeight;
    if (!width || !height) {
      return;
    }
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    var duration = this.duration();
    var current = typeof atSeconds === "number" ? atSeconds : this.position();
    var playedX = duration > 0 ? (current / duration) * width : 0;
    var peaks = this.peaks;
    var barWidth = 2;
    var gap = 1;
    var bars = Math.max(1, Math.floor(width / (barWidth + gap)));
    var middle = height / 2;
    for (var i = 0; i < bars; i++) {
      var value = 0;
      if (peaks.length) {
        // Each bar shows the loudest peak of the slice of values it covers.
        var from = Math.floor((i / bars) * peaks.length);
        var to = Math.max(from + 1, Math.floor(((i + 1) / bars) * peaks.length));
        for (var j = from; j < to && j < peaks.length; j++) {
          value = Math.max(value, Number(peaks[j]) || 0);
        }
      }
      var x = i * (barWidth + gap);
      var barHeight = Math.max(1.5, value * (height - 8));
      ctx.fillStyle = x < playedX ? PLAYED : UNPLAYED;
      ctx.fillRect(x, middle - barHeight / 2, barWidth, barHeight);
    }

    this.wave.setAttribute("aria-valuemax", String(Math.round(duration)));
    this.wave.setAttribute("aria-valuenow", String(Math.round(current)));
    this.wave.setAttribute("aria-valuetext", formatTime(current) + " of " + formatTime(duration));
    if (this.readout) {
      this.readout.textContent = formatTime(current) + " / " + formatTime(duration);
    }
  };

  Player.prototype.refreshMarkers = function () {
    var layer = this.markerLayer;
    var duration = this.duration();
    layer.textContent = "";
    if (!duration) {
      return;
    }
    document.querySelectorAll("#thread [data-seek]").forEach(function (button) {
      var seconds = parseFloat(button.dataset.seek);
      if (!isFinite(seconds) || seconds < 0 || seconds > duration) {
        return;
      }
      var marker = document.createElement("span");
      marker.className = "waveform-marker";
      marker.style.left = (seconds / duration) * 100 + "%";
      marker.title = button.getAttribute("aria-label") || button.textContent;
      layer.appendChild(marker);
    });
  };

  function currentPlayer() {
    var root = document.querySelector("[data-player]");
    return root && root.backtrackPlayer ? root.backtrackPlayer : null;
  }

  function initPlayers(scope) {
    var roots = [];
    if (scope.matches && scope.matches("[data-player]")) {
      roots.push(scope);
    }
    scope.querySelectorAll("[data-player]").forEach(function (root) {
      roots.push(root);
    });
    roots.forEach(function (root) {
      if (!root.backtrackPlayer && root.querySelector("audio") && root.querySelector(".waveform")) {
        root.backtrackPlayer = new Player(root);
        document.dispatchEvent(new CustomEvent("backtrack:player-ready", { detail: root }));
      }
    });
  }

  document.addEventListener("click", function (event) {
    var trigger = event.target.closest("[data-seek]");
    if (!trigger) {
      return;
    }
    var player = currentPlayer();
    if (!player) {
      return;
    }
    event.preventDefault();
    player.seek(parseFloat(trigger.dataset.seek));
    player.wave.scrollIntoView({ block: "nearest", behavior: "smooth" });
  });

  window.Backtrack = window.Backtrack || {};
  window.Backtrack.formatTime = formatTime;
  window.Backtrack.currentPlayer = currentPlayer;
  window.Backtrack.initPlayers = initPlayers;

  document.addEventListener("DOMContentLoaded", function () {
    initPlayers(document);
  });
  document.addEventListener("htmx:load", function (event) {
    initPlayers(event.target);
    var player = currentPlayer();
    if (player) {
      player.refreshMarkers();
    }
  });
})();
