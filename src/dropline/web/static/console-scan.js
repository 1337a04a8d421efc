// The console's "find order or serial" box: where the browser has BarcodeDetector and a
// camera, a Scan button reads a barcode or QR code into the box and sends the form. Without
// either (or without JavaScript) the box is typed into: the form works the same.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) {
    return;
  }
  document.querySelectorAll("form.find").forEach(function (form) {
    var button = form.querySelector("[data-scan]");
    var input = form.querySelector("[data-scan-target]");
    var video = form.querySelector("[data-scan-video]");
    if (!button || !input || !video) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var detector = new window.BarcodeDetector();
      navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}})
        .then(function (stream) {
          video.srcObject = stream;
          video.hidden = false;
          return video.play().then(function () {
            var stop = function () {
              stream.getTracks().forEach(function (t) { t.stop(); });
              video.hidden = true;
            };
            var look = function () {
              detector.detect(video).then(function (codes) {
                if (codes.length) {
                  stop();
                  input.value = codes[0].rawValue.trim();
                  form.submit();
                } else {
                  window.requestAnimationFrame(look);
                }
              }).catch(stop);
            };
            look();
          });
        })
        .catch(function () {
          button.hidden = true;  // no camera (or refused): the box is typed into
          input.focus();
        });
    });
  });
}());
