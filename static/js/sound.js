// Stage presets fill the mixer's faders (the performer can then adjust them), and the
// "Space for my voice" switch shows its amount only when it is on.
(function () {
  "use strict";

  function applyPreset(name) {
    const data = document.getElementById("preset-mixes");
    const form = document.getElementById("render-form");
    if (!data || !form) return;
    const mix = JSON.parse(data.textContent)[name] || {};
    form.querySelectorAll("input[data-gain]").forEach(function (fader) {
      const index = fader.name.replace("gain_", "");
      const entry = mix[index] || { gain_db: 0, mute: false, solo: false };
      fader.value = entry.gain_db;
      fader.dispatchEvent(new Event("input", { bubbles: true }));
      const mute = form.querySelector('input[name="mute_' + index + '"]');
      if (mute) {
        mute.checked = !!entry.mute;
        mute.dispatchEvent(new Event("change", { bubbles: true }));
      }
      const solo = form.querySelector('input[name="solo_' + index + '"]');
      if (solo) solo.checked = false;
    });
    const status = document.getElementById("preset-status");
    if (status) status.textContent = "Mixer set to " + name + ".";
  }

  function syncSpace() {
    const toggle = document.querySelector("input[data-space-voice]");
    const amount = document.querySelector("[data-space-amount]");
    if (toggle && amount) amount.hidden = !toggle.checked;
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-preset]");
    if (button) applyPreset(button.dataset.preset);
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("input[data-space-voice]")) syncSpace();
  });
  document.addEventListener("input", function (event) {
    if (event.target.name === "space_for_voice") {
      const out = document.getElementById("space-out");
      if (out) out.textContent = event.target.value + " dB";
    }
  });
  document.addEventListener("DOMContentLoaded", syncSpace);
  syncSpace();
})();
