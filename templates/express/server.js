const express = require('express');

const app = express();
const port = Number(process.env.PORT) || 3000;

app.get('/', (_req, res) => {
  res.send('<!doctype html><title>Express</title><h1 id="title">Hello from Express</h1>');
});

app.get('/api/hello', (_req, res) => {
  res.json({ message: 'Hello from Express' });
});

app.listen(port, '0.0.0.0', () => {
  console.log(`listening on http://0.0.0.0:${port}`);
});
