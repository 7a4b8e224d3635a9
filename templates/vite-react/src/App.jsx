import { useState } from 'react';

export default function App() {
  const [count, setCount] = useState(0);
  return (
    <main>
      <h1 id="title">Hello from Vite + React</h1>
      <button id="counter" type="button" onClick={() => setCount((c) => c + 1)}>
        count is {count}
      </button>
      <p>
        Edit <code>src/App.jsx</code> and save: the page updates in place.
      </p>
    </main>
  );
}
