import { Descriptions, Space, Switch, Tag, Typography } from "antd";
import { useState } from "react";
import { ApiError, api } from "../api/client";
import type { ConnectionState } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatTime } from "../lib/format";

export const STATE_COLORS: Record<string, string> = {
  connected: "green",
  connecting: "processing",
  reconnecting: "orange",
  disconnected: "default",
};

/** The held paper connection (GET/POST /api/connection/) with its manual toggle. */
export function ConnectionCard({ connection, error, onChange }: {
  connection: ConnectionState | null;
  error: ApiError | null;
  onChange: (state: ConnectionState) => void;
}) {
  const [switching, setSwitching] = useState(false);
  const [toggleError, setToggleError] = useState<ApiError | null>(null);

  const toggle = async (connected: boolean) => {
    setSwitching(true);
    setToggleError(null);
    try {
      onChange(await api.post<ConnectionState>("/api/connection/", { connected }));
    } catch (exc) {
      setToggleError(exc as ApiError);
    } finally {
      setSwitching(false);
    }
  };

  const on = connection ? connection.state !== "disconnected" : false;
  return (
    <>
      <Space align="center" style={{ marginBottom: 12 }} wrap>
        <Switch
          aria-label="IBKR paper connection"
          data-testid="connection-toggle"
          checked={on}
          loading={switching}
          disabled={!connection && !error}
          onChange={(checked) => void toggle(checked)}
          checkedChildren="on"
          unCheckedChildren="off"
        />
        {connection && (
          <Tag color={STATE_COLORS[connection.state]} data-testid="connection-state">{connection.state}</Tag>
        )}
        {connection && (
          <Typography.Text type="secondary">
            TWS {connection.host}:{connection.port}, client id {connection.client_id}
          </Typography.Text>
        )}
      </Space>
      <ErrorAlert error={toggleError ?? error} />
      {connection && connection.state !== "disconnected" && (
        <Descriptions size="small" column={1}>
          <Descriptions.Item label="Accounts">{connection.accounts.join(", ") || "—"}</Descriptions.Item>
          <Descriptions.Item label="Since">{formatTime(connection.since)}</Descriptions.Item>
        </Descriptions>
      )}
      {connection?.last_error && <Typography.Text type="warning">Last error: {connection.last_error}</Typography.Text>}
      {connection && connection.state === "disconnected" && !connection.last_error && (
        <Typography.Text type="secondary">
          Off: each portfolio read opens a short connection. On: the dashboard holds one and refreshes the account every few seconds.
        </Typography.Text>
      )}
    </>
  );
}
