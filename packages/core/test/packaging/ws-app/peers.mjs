// An app without accounts or JWTs, so without @node-rs/argon2 and jose: the main entry loads,
// and each auth entry fails with an error that names the package it needs.
const core = await import("@whisperchat/core");
const errors = {};
for (const entry of ["@whisperchat/core/auth", "@whisperchat/core/jwt"]) {
  try {
    await import(entry);
    errors[entry] = null;
  } catch (error) {
    errors[entry] = { code: error.code, message: error.message };
  }
}
console.log(JSON.stringify({ createWhisper: typeof core.createWhisper, errors }));
