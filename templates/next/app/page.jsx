import Counter from './counter.jsx';

export default function Page() {
  return (
    <main>
      <h1 id="title">Hello from Next.js</h1>
      <Counter />
      <p>
        Edit <code>app/page.jsx</code> and save: the page updates in place.
      </p>
    </main>
  );
}
