import { Button, Card, Col, Row, Space, Statistic, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import type { ApiState } from "../api/useApi";
import type { Portfolio, PortfolioPosition } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatMoney, formatNumber, formatRatio } from "../lib/format";

const signed = (v: number | null) => (v === null ? "—" : <span className={v >= 0 ? "gain" : "loss"}>{formatMoney(v)}</span>);

const COLUMNS: ColumnsType<PortfolioPosition> = [
  { title: "Symbol", dataIndex: "symbol", render: (s: string, p) => <>{s} <Typography.Text type="secondary">{p.sec_type}</Typography.Text></> },
  { title: "Qty", dataIndex: "quantity", align: "right", render: (v: number) => formatNumber(v, v % 1 ? 4 : 0) },
  { title: "Avg. cost", dataIndex: "average_cost", align: "right", render: (v: number) => formatMoney(v) },
  { title: "Price", dataIndex: "market_price", align: "right", render: (v: number) => formatMoney(v) },
  { title: "Market value", dataIndex: "market_value", align: "right", render: (v: number, p) => formatMoney(v, p.currency) },
  { title: "Unrealized", dataIndex: "unrealized_pnl", align: "right", render: signed },
  { title: "Unreal. %", dataIndex: "unrealized_pnl_ratio", align: "right", render: (v: number | null) => formatRatio(v) },
  { title: "Realized", dataIndex: "realized_pnl", align: "right", responsive: ["md"], render: signed },
];

/** The paper account from TWS (GET /api/portfolio/): totals, P&L, cash, positions. */
export function PortfolioCard({ portfolio, polling }: { portfolio: ApiState<Portfolio>; polling: boolean }) {
  const data = portfolio.data;
  return (
    <Card
      size="small"
      title="Paper account (TWS)"
      extra={
        <Space>
          {polling && <Tag color="green">refreshing every 5 s</Tag>}
          <Button size="small" onClick={portfolio.reload} loading={portfolio.loading}>Refresh</Button>
        </Space>
      }
      data-testid="portfolio"
    >
      <ErrorAlert error={portfolio.error} />
      {!data && !portfolio.error && <Typography.Text type="secondary">Reading the account…</Typography.Text>}
      {data && (
        <>
          <Typography.Paragraph type="secondary" style={{ marginBottom: 8 }}>
            {data.account} {data.paper && <Tag color="blue">paper</Tag>} as of {data.account_time} · via {data.source.connection} connection
          </Typography.Paragraph>
          <Row gutter={[12, 12]}>
            {[
              ["Net liquidation", formatMoney(data.totals.net_liquidation)],
              ["Market value", formatMoney(data.totals.market_value)],
              ["Daily P&L", formatMoney(data.pnl.daily)],
              ["Unrealized P&L", `${formatMoney(data.pnl.unrealized)} (${formatRatio(data.pnl.unrealized_ratio)})`],
              ["Realized P&L", formatMoney(data.pnl.realized)],
              ["Total cash", formatMoney(data.totals.total_cash)],
            ].map(([title, value]) => (
              <Col key={title} xs={12} md={8}>
                <Statistic title={title} value={value} styles={{ content: { fontSize: 18 } }} />
              </Col>
            ))}
          </Row>
          <Space wrap style={{ margin: "12px 0" }} data-testid="cash-balances">
            <Typography.Text strong>Cash:</Typography.Text>
            {Object.entries(data.cash_balances).map(([currency, amount]) => (
              <Tag key={currency}>{currency} {formatNumber(amount)}</Tag>
            ))}
          </Space>
          <Table<PortfolioPosition>
            data-testid="portfolio-positions"
            size="small"
            rowKey={(p) => `${p.symbol}|${p.sec_type}|${p.currency}`}
            columns={COLUMNS}
            dataSource={data.positions}
            pagination={false}
            scroll={{ x: 640 }}
            locale={{ emptyText: "No open positions" }}
          />
        </>
      )}
    </Card>
  );
}
