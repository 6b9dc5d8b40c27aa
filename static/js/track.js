/*
 * Track page behaviour: the "use this key" shortcut, the mixer's live readouts, "Comment at current
 * moment", and keeping the thread's markers in step with the render the player is playing.
 */
(function () {
  "use strict";

  function formatTime(seconds) {
    return window.Backtrack && window.Backtrack.formatTime
      ? window.Backtrack.formatTime(seconds)
      : String(Math.round(seconds));
  }

  function formatGain(value) {
    var number = parseFloat(value);
    if (number === 0) {
      return "0 dB";
    }
    return (number > 0 ? "+" : "") + number.toFixed(1) + " dB";
  }

  // Key shortcut: one click sets the Key select to the best suggestion.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-set-key]");
    if (!button) {
      return;
    }
    event.preventDefault();
    var select = document.getElementById(button.dataset.target || "id_transpose");
    if (!select) {
      return;
    }
    select.value = button.dataset.setKey;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    var status = document.getElementById("key-choice-status");
    if (status) {
      status.textContent = "Key set to " + select.options[select.selectedIndex].text + ".";
    }
    select.focus();
  });

  // Mixer: show the gain next to each slider and grey out muted parts.
  document.addEventListener("input", function (event) {
    var slider = event.target.closest("input[type=range][data-gain]");
    if (slider) {
      var output = document.getElementById(slider.dataset.output);
      if (output) {
        output.textContent = formatGain(slider.value);
      }
    }
  });

  document.addEventListener("change", function (event) {
    var mute = event.target.closest("input[data-mute]");
    if (mute) {
      var row = mute.closest("tr");
      if (row) {
        row.classList.toggle("muted-row", mute.checked);
      }
    }
  });

  // "Comment at current moment": fill the hidden at_seconds and render fields from the player.
  function momentParts(form) {
    return {
      seconds: form.querySelector("input[name=at_seconds]"),
      render: form.querySelector("input[name=render_id]"),
      label: form.querySelector("[data-moment-label]"),
      clear: form.querySelector("[data-moment-clear]"),
      text: form.querySelector("textarea[name=body]"),
    };
  }

  function clearMoment(form) {
    var parts = momentParts(form);
    parts.seconds.value = "";
    if (parts.label) {
      parts.label.textContent = "";
    }
    if (parts.clear) {
      parts.clear.hidden = true;
    }
  }

  document.addEventListener("click", function (event) {
    var now = event.target.closest("[data-comment-now]");
    if (now) {
      event.preventDefault();
      var player = window.Backtrack && window.Backtrack.currentPlayer();
      var form = document.getElementById(now.dataset.form || "comment-form");
      if (!player || !form) {
        return;
      }
      var parts = momentParts(form);
      var seconds = player.position ? player.position() : player.audio.currentTime || 0;
      player.audio.pause();
      parts.seconds.value = seconds.toFixed(2);
      parts.render.value = player.root.dataset.renderId;
      if (parts.label) {
        parts.label.textContent = "Pinned at " + formatTime(seconds);
      }
      if (parts.clear) {
        parts.clear.hidden = false;
      }
      if (parts.text) {
        parts.text.focus();
      }
      return;
    }
    var clear = event.target.closest("[data-moment-clear]");
    if (clear) {
      event.preventDefault();
      clearMoment(clear.closest("form"));
    }
  });

  function enableMomentButtons() {
    var player = window.Backtrack && window.Backtrack.currentPlayer();
    document.querySelectorAll("[data-comment-now]").forEach(function (button) {
      button.disabled = !player;
      var hint = document.getElementById(button.getAttribute("aria-describedby"));
      if (hint) {
        hint.hidden = Boolean(player);
      }
    });
    document.querySelectorAll("form[data-comment-form] input[name=render_id]").forEach(function (input) {
      if (player && !input.form.querySelector("input[name=at_seconds]").value) {
        input.value = player.root.dataset.renderId;
      }
    });
  }

  // When a new render finishes, reload the thread for it so times and markers match its tempo.
  function syncThread() {
    var player = window.Backtrack && window.Backtrack.currentPlayer();
    var thread = document.getElementById("thread");
    if (!player || !thread || !window.htmx) {
      return;
    }
    var renderId = player.root.dataset.renderId;
    if (thread.dataset.renderId === renderId) {
      return;
    }
    var url = new URL(thread.dataset.url, window.location.href);
    url.searchParams.set("render", renderId);
    if (thread.dataset.status) {
      url.searchParams.set("status", thread.dataset.status);
    }
    window.htmx.ajax("GET", url.toString(), { target: "#thread", swap: "outerHTML" });
  }

  document.addEventListener("backtrack:player-ready", function () {
    enableMomentButtons();
    syncThread();
  });
  // Instant listening swapped the render heard: comments pin to it; a new tempo or count-in moves
  // the thread's times, so the thread is fetched again for it.
  document.addEventListener("backtrack:render-changed", function (event) {
    enableMomentButtons();
    if (event.detail && event.detail.timelineChanged) {
      syncThread();
    }
  });
  document.addEventListener("htmx:load", enableMomentButtons);
  document.addEventListener("DOMContentLoaded", enableMomentButtons);
})();
