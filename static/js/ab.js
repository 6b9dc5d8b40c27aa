// A/B: switch between two renders (a revision and the previous one, same settings) at the same bar
// and fraction of a bar, across tempo differences. The maths is tracks.selectors.ab_seconds's.
(function () {
  "use strict";

  function abSeconds(from, to, seconds) {
    if (from.length < 2 || to.length < 2) return seconds;
    if (seconds < from[0]) {
      var bars = (from[0] - seconds) / (from[1] - from[0]);
      return Math.max(0, to[0] - bars * (to[1] - to[0]));
    }
    var index = from.length - 2;
    for (var i = 0; i < from.length - 1; i++) {
      if (from[i + 1] > seconds) { index = i; break; }
    }
    var fraction = Math.min(1, (seconds - from[index]) / (from[index + 1] - from[index]));
    if (index + 1 >= to.length) return to[to.length - 1];
    return to[index] + fraction * (to[index + 1] - to[index]);
  }

  function setUp(box) {
    var players = box.querySelectorAll("audio[data-grid]");
    if (players.length !== 2) return;
    var grids = [JSON.parse(players[0].dataset.grid), JSON.parse(players[1].dataset.grid)];
    var label = box.querySelector("[data-ab-label]");
    var active = 0;

    function show() {
      players[active].hidden = false;
      players[1 - active].hidden = true;
      if (label) label.textContent = players[active].dataset.name;
    }

    function toggle() {
      var from = players[active];
      var to = players[1 - active];
      var playing = !from.paused;
      to.currentTime = abSeconds(grids[active], grids[1 - active], from.currentTime);
      from.pause();
      active = 1 - active;
      show();
      if (playing) to.play();
    }

    box.querySelector("[data-ab-toggle]").addEventListener("click", toggle);
    document.addEventListener("keydown", function (event) {
      var tag = (event.target && event.target.tagName) || "";
      if (event.key === "x" && !/INPUT|TEXTAREA|SELECT/.test(tag) && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        toggle();
      }
    });
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-ab]").forEach(setUp);
  });
  window.backtrackAbSeconds = abSeconds;
})();
