// previewd serves the dev server on {port}-{id}.<preview domain>: Next.js must accept those origins
// for its dev resources and HMR (no environment switch exists for this).
const previewDomain = process.env.PREVIEWD_PREVIEW_DOMAIN || 'preview.localhost';

/** @type {import('next').NextConfig} */
const nextConfig = {
  allowedDevOrigins: [`*.${previewDomain}`],
};

export default nextConfig;
