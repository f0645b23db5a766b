// Runs in the window, with only what preload.js exposes.
function show(s) {
  document.getElementById('length').textContent = s.length.toLocaleString()
  document.getElementById('launch').textContent = `#${s.launch}, ${s.beatsThisLaunch} beats so far`
  document.getElementById('mode').textContent = s.mode
  document.getElementById('path').textContent = s.path
}
window.counter.snapshot().then(show)
window.counter.onUpdate(show)
