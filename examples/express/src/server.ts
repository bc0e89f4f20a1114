import { createChatApp } from "./app.js";

const { server, close } = createChatApp();

server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = server.address() as { port: number };
  console.log(`app on http://localhost:${port}/api/hello, chat on ws://localhost:${port}/whisper`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    close().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
