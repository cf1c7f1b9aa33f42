import { Badge, Layout, Menu, Skeleton, Space, Tooltip, Typography } from "antd";
import { Suspense, lazy } from "react";
import { Link, Route, Routes, useLocation } from "react-router";
import { useApi } from "./api/useApi";

// Each page is its own chunk: the chart library loads with the backtest page only.
const BacktestPage = lazy(() => import("./backtest/BacktestPage").then((m) => ({ default: m.BacktestPage })));
const SimulatedPage = lazy(() => import("./simulated/SimulatedPage").then((m) => ({ default: m.SimulatedPage })));

interface Health {
  status: string;
  version: string;
  tws: { host: string; port: number; reachable: boolean; error: string | null };
}

/** The backend's and TWS's state in the header (GET /api/health/, every 15 s). */
function HealthBadge() {
  const health = useApi<Health>("/api/health/", 15000);
  if (health.error) {
    const text = health.error.isNetwork ? "Backend unreachable" : `API error ${health.error.status}`;
    return (
      <Tooltip title={health.error.message}>
        <Badge status="error" text={<span className="header-text" data-testid="health">{text}</span>} />
      </Tooltip>
    );
  }
  if (!health.data) return <Badge status="default" text={<span className="header-text">Connecting…</span>} />;
  const tws = health.data.tws;
  return (
    <Space size="middle" data-testid="health">
      <Badge status="success" text={<span className="header-text">API {health.data.version}</span>} />
      <Tooltip title={tws.error ?? `TWS at ${tws.host}:${tws.port}`}>
        <Badge status={tws.reachable ? "success" : "warning"} text={<span className="header-text">TWS {tws.reachable ? "reachable" : "unavailable"}</span>} />
      </Tooltip>
    </Space>
  );
}

function NotFound() {
  return (
    <Typography.Paragraph>
      No page here. Go to the <Link to="/">backtest workspace</Link> or <Link to="/simulated">simulated trading</Link>.
    </Typography.Paragraph>
  );
}

export function App() {
  const location = useLocation();
  const selected = location.pathname.startsWith("/simulated") ? "simulated" : "backtest";
  return (
    <Layout className="app">
      <Layout.Header className="app-header">
        <Typography.Title level={4} className="brand">quant_trading</Typography.Title>
        <Menu
          theme="dark"
          mode="horizontal"
          selectedKeys={[selected]}
          className="nav"
          items={[
            { key: "backtest", label: <Link to="/">Backtest</Link> },
            { key: "simulated", label: <Link to="/simulated">Simulated trading</Link> },
          ]}
        />
        <HealthBadge />
      </Layout.Header>
      <Layout.Content className="app-content">
        <Suspense fallback={<Skeleton active paragraph={{ rows: 12 }} />}>
          <Routes>
            <Route path="/" element={<BacktestPage />} />
            <Route path="/simulated" element={<SimulatedPage />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </Layout.Content>
    </Layout>
  );
}
