/*
 * "Hear the note": plays a pitch with a WebAudio oscillator so a singer can check a note of their
 * range by ear. Buttons carry data-hear-for="<id of a select whose options have data-midi>" or
 * data-midi="<number>" directly. Also paints the range on the little keyboard strip (data-keyboard).
 */
(function () {
  "use strict";

  var context = null;

  function frequency(midi) {
    return 440 * Math.pow(2, (midi - 69) / 12);
  }

  function play(midi) {
    var AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) {
      return;
    }
    if (!context) {
      context = new AudioContextClass();
    }
    if (context.state === "suspended") {
      context.resume();
    }
    var now = context.currentTime;
    var osc = context.createOscillator();
    var overtone = context.createOscillator();
    var gain = context.createGain();
    osc.type = "triangle";
    overtone.type = "sine";
    osc.frequency.value = frequency(midi);
    overtone.frequency.value = frequency(midi) * 2;
    // A soft attack and release so the tone does not click.
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.3, now + 0.04);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 1.4);
    var overtoneGain = context.createGain();
    overtoneGain.gain.value = 0.15;
    osc.connect(gain);
    overtone.connect(overtoneGain);
    overtoneGain.connect(gain);
    gain.connect(context.destination);
    osc.start(now);
    overtone.start(now);
    osc.stop(now + 1.5);
    overtone.stop(now + 1.5);
  }

  function selectedMidi(select) {
    var option = select.options[select.selectedIndex];
    if (!option) {
      return null;
    }
    var midi = parseInt(option.dataset.midi, 10);
    return isNaN(midi) ? null : midi;
  }

  function paintKeyboards() {
    document.querySelectorAll("[data-keyboard]").forEach(function (strip) {
      var low = document.getElementById(strip.dataset.low);
      var high = document.getElementById(strip.dataset.high);
      var lowMidi = low ? selectedMidi(low) : null;
      var highMidi = high ? selectedMidi(high) : null;
      strip.querySelectorAll("[data-midi]").forEach(function (key) {
        var midi = parseInt(key.dataset.midi, 10);
        var inside = lowMidi !== null && highMidi !== null && midi >= lowMidi && midi <= highMidi;
        key.classList.toggle("in-range", inside);
      });
      var summary = document.getElementById(strip.dataset.summary);
      if (summary && low && high) {
        var lowText = lowMidi === null ? "" : low.options[low.selectedIndex].text;
        var highText = highMidi === null ? "" : high.options[high.selectedIndex].text;
        if (lowText && highText) {
          var span = highMidi - lowMidi;
          summary.textContent =
            "Your range: " + lowText + " to " + highText +
            (span > 0 ? " (" + span + " semitones)" : "");
        } else {
          summary.textContent = "Pick your lowest and highest comfortable notes.";
        }
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-hear-for], button[data-midi]");
    if (!button) {
      return;
    }
    event.preventDefault();
    var midi = null;
    if (button.dataset.hearFor) {
      var select = document.getElementById(button.dataset.hearFor);
      midi = select ? selectedMidi(select) : null;
    } else {
      midi = parseInt(button.dataset.midi, 10);
    }
    if (midi !== null && !isNaN(midi)) {
      play(midi);
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-note-select]")) {
      paintKeyboards();
    }
  });

  document.addEventListener("DOMContentLoaded", paintKeyboards);

  window.Backtrack = window.Backtrack || {};
  window.Backtrack.playNote = play;
})();
