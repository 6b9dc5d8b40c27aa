// Dynamics per section: the level sliders show only for "Per section", and each slider's
// reading follows it.
(function () {
  "use strict";

  function syncLevels() {
    const mode = document.querySelector("select[data-dynamics-mode]");
    const levels = document.querySelector("[data-dynamics-levels]");
    if (mode && levels) levels.hidden = mode.value !== "sections";
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-dynamics-mode]")) syncLevels();
  });
  document.addEventListener("input", function (event) {
    if (!event.target.matches("input[data-dynamics]")) return;
    const out = document.querySelector('output[for="' + event.target.id + '"]');
    if (out) out.textContent = (event.target.value > 0 ? "+" : "") + event.target.value + " dB";
  });
  // The form is swapped in by htmx after an error: hide the levels again when it arrives.
  document.addEventListener("htmx:afterSwap", syncLevels);
  document.addEventListener("DOMContentLoaded", syncLevels);
  syncLevels();
})();
