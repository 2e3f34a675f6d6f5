// The access page of a document (the subject opened access): count down to the expiry of the
// QR code and the six-digit code. The server enforces the expiry; this only shows it. When the
// time is over the code and the QR are hidden and the page says so.
//
// The time left comes from the server (data-seconds-left, by the portal's clock) and is counted
// on the browser's monotonic clock, so a wrong clock on the person's computer does not matter.
// Markup: an element with data-seconds-left holding a <time data-countdown> for mm:ss, elements
// with data-hide-on-expiry, and a hidden [data-expired-message] shown at the end.
(function () {
  "use strict";
  var box = document.querySelector("[data-seconds-left]");
  if (!box) {
    return;
  }
  var seconds = parseInt(box.getAttribute("data-seconds-left"), 10);
  var clock = box.querySelector("[data-countdown]");
  if (isNaN(seconds) || !clock) {
    return;
  }
  var deadline = performance.now() + seconds * 1000;
  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }
  var timer = null;
  function tick() {
    var left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    clock.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
    clock.setAttribute("datetime", "PT" + left + "S");
    if (left > 0) {
      return;
    }
    if (timer !== null) {
      window.clearInterval(timer);
    }
    document.querySelectorAll("[data-hide-on-expiry]").forEach(function (el) {
      el.hidden = true;
    });
    var message = document.querySelector("[data-expired-message]");
    if (message) {
      message.hidden = false;
    }
  }
  tick();
  timer = window.setInterval(tick, 1000);
})();
