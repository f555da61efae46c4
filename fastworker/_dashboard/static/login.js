// The dashboard needs a token: ask once, keep it in this browser, then load the page.
(function () {
  var KEY = "fastworker-dashboard-token";
  function open(token, remember) {
    return fetch(location.href, { headers: { Authorization: "Bearer " + token, Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 401) { throw new Error("wrong token"); }
        return response.text();
      })
      .then(function (html) {
        if (remember) { localStorage.setItem(KEY, token); }
        document.open(); document.write(html); document.close();
      });
  }
  var form = document.getElementById("login");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = document.getElementById("token").value.trim();
    open(token, true).catch(function (err) {
      document.getElementById("login-error").textContent = err.message;
    });
  });
  var kept = localStorage.getItem(KEY);
  if (kept) {
    open(kept, false).catch(function () { localStorage.removeItem(KEY); });
  }
})();
