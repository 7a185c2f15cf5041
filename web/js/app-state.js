// App-wide flags shared by main.js, the router guard and pages.
export const app = {
  needsAdmin: false, // GET /api/setup said no user exists yet
  flash: null, // a message for the login page ("your session has ended")
  returnTo: null, // where to go after logging in
};
