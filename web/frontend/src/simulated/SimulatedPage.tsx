import { Card, Col, Row } from "antd";
import { useEffect, useState } from "react";
import type { ConnectionState, Portfolio, SimulatedOrder, Strategy } from "../api/types";
import { useApi } from "../api/useApi";
import { Blotter } from "./Blotter";
import { ConnectionCard } from "./ConnectionCard";
import { OrderForm } from "./OrderForm";
import { PortfolioCard } from "./PortfolioCard";
import { PositionsSummary } from "./PositionsSummary";
import { RecentActivity } from "./RecentActivity";

/** How often the account is read while the paper connection is held. */
export const PORTFOLIO_REFRESH_MS = 5000;

/** Simulated trading: log paper fills, see the blotter and positions, hold the paper TWS
 * connection and watch the account. */
export function SimulatedPage() {
  const [version, setVersion] = useState(0);
  const strategies = useApi<Strategy[]>("/api/strategies/");
  const connection = useApi<ConnectionState>("/api/connection/", 5000);
  const [override, setOverride] = useState<ConnectionState | null>(null);
  const state = override ?? connection.data;
  const connected = state?.state === "connected";
  const portfolio = useApi<Portfolio>("/api/portfolio/", connected ? PORTFOLIO_REFRESH_MS : undefined);

  const logged = (_order: SimulatedOrder) => setVersion((v) => v + 1);
  const changed = (next: ConnectionState) => {
    setOverride(next);
    connection.reload();
    portfolio.reload();
  };
  // The toggle's answer shows at once; the next read of the state replaces it.
  useEffect(() => setOverride(null), [connection.data]);

  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={9} xxl={7}>
        <Card size="small" title="Log a paper trade">
          <OrderForm strategies={(strategies.data ?? []).map((s) => s.name)} onLogged={logged} />
        </Card>
        <Card size="small" title="IBKR paper connection" style={{ marginTop: 16 }}>
          <ConnectionCard connection={state ?? null} error={connection.error} onChange={changed} />
        </Card>
        <Card size="small" title="Recent activity" style={{ marginTop: 16 }}>
          <RecentActivity version={version} />
        </Card>
      </Col>
      <Col xs={24} lg={15} xxl={17}>
        <PortfolioCard portfolio={portfolio} polling={connected} />
        <Card size="small" title="Simulated positions" style={{ marginTop: 16 }}>
          <PositionsSummary version={version} />
        </Card>
        <Card size="small" title="Blotter" style={{ marginTop: 16 }}>
          <Blotter version={version} />
        </Card>
      </Col>
    </Row>
  );
}
