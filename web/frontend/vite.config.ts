/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig, loadEnv } from "vite";

// `npm run dev` serves on http://127.0.0.1:5173 and forwards /api to the Django backend:
// http://localhost:8000 unless VITE_API_BASE_URL (in .env beside this file) says otherwise.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), "VITE_");
  const proxy = {
    "/api": { target: env.VITE_API_BASE_URL || "http://localhost:8000", changeOrigin: true },
  };
  return {
    plugins: [react()],
    server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
    preview: { host: "127.0.0.1", port: 4173, proxy },
    build: { chunkSizeWarningLimit: 2000 },
    test: {
      environment: "jsdom",
      globals: true,
      setupFiles: ["./src/test-setup.ts"],
      include: ["src/**/*.test.{ts,tsx}"],
      css: false,
      pool: "threads",
      maxWorkers: 2,
      // antd in jsdom on a shared 2-core machine: a form test takes a few seconds.
      testTimeout: 30_000,
    },
  };
});
