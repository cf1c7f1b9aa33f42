import { Alert, AutoComplete, Button, Form, Input, InputNumber, Radio, message } from "antd";
import { useEffect, useRef, useState } from "react";
import { ApiError, api } from "../api/client";
import type { SimulatedOrder } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatMoney } from "../lib/format";
import { newClientOrderId, orderRequest, validateOrder, type OrderFormValues } from "./orderForm";

const FIELDS = ["symbol", "side", "quantity", "price", "commission", "strategy", "note"];

function rule(field: keyof OrderFormValues) {
  return ({ getFieldsValue }: { getFieldsValue: () => OrderFormValues }) => ({
    validator: () => {
      const problem = validateOrder(getFieldsValue())[field];
      return problem ? Promise.reject(new Error(problem)) : Promise.resolve();
    },
  });
}

/** Log a paper fill (POST /api/simulated-orders/). One client_order_id per order being
 * entered: a double click or a retry after a lost answer posts the same id, and the server
 * answers with the fill it already stored. */
export function OrderForm({ strategies, onLogged }: { strategies: string[]; onLogged: (order: SimulatedOrder) => void }) {
  const [form] = Form.useForm<OrderFormValues>();
  const clientOrderId = useRef(newClientOrderId());
  const inFlight = useRef(false);
  // After a post the id stays until the form is edited: a late second submit of the same
  // order re-sends the same id, and the server answers with the fill it already stored.
  const used = useRef(false);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, contextHolder] = message.useMessage();

  useEffect(() => {
    if (!error || error.status !== 400) return;
    form.setFields(
      Object.entries(error.fields)
        .filter(([name]) => FIELDS.includes(name))
        .map(([name, errors]) => ({ name: name as keyof OrderFormValues, errors })),
    );
  }, [error, form]);

  const submit = async (values: OrderFormValues) => {
    if (inFlight.current) return;
    inFlight.current = true;
    setSending(true);
    setError(null);
    try {
      const order = await api.post<SimulatedOrder>("/api/simulated-orders/", orderRequest(values, clientOrderId.current));
      used.current = true;
      form.resetFields(["quantity", "price", "note"]);
      notice.success(`Logged ${order.side} ${order.quantity} ${order.symbol} @ ${formatMoney(order.price)}`);
      onLogged(order);
    } catch (exc) {
      setError(exc as ApiError);
    } finally {
      inFlight.current = false;
      setSending(false);
    }
  };

  const unknownFields = error?.status === 400 && Object.keys(error.fields).every((f) => !FIELDS.includes(f));
  return (
    <Form
      form={form}
      layout="vertical"
      aria-label="Log a paper trade"
      initialValues={{ side: "BUY", commission: 1.0, strategy: "", note: "" }}
      onFinish={submit}
      onValuesChange={() => {
        // Another order now: a new id (the old one may already be stored with other values).
        if (used.current || error) {
          clientOrderId.current = newClientOrderId();
          used.current = false;
        }
      }}
      requiredMark={false}
    >
      {contextHolder}
      {error && error.status !== 400 && <ErrorAlert error={error} />}
      {unknownFields && <Alert type="error" showIcon title={error.message} style={{ marginBottom: 12 }} />}
      <div className="order-grid">
        <Form.Item label="Symbol" name="symbol" rules={[rule("symbol")]} normalize={(v: string) => v?.toUpperCase()}>
          <Input placeholder="AAPL" autoComplete="off" aria-label="Symbol" />
        </Form.Item>
        <Form.Item label="Side" name="side" rules={[rule("side")]}>
          <Radio.Group optionType="button" buttonStyle="solid" options={[{ label: "BUY", value: "BUY" }, { label: "SELL", value: "SELL" }]} />
        </Form.Item>
        <Form.Item label="Quantity (shares)" name="quantity" rules={[rule("quantity")]}>
          <InputNumber style={{ width: "100%" }} aria-label="Quantity" placeholder="100" />
        </Form.Item>
        <Form.Item label="Fill price ($)" name="price" rules={[rule("price")]}>
          <InputNumber style={{ width: "100%" }} aria-label="Price" placeholder="310.50" step={0.01} />
        </Form.Item>
        <Form.Item label="Commission ($)" name="commission" rules={[rule("commission")]}>
          <InputNumber style={{ width: "100%" }} aria-label="Commission" step={0.01} />
        </Form.Item>
        <Form.Item label="Strategy (optional)" name="strategy" rules={[rule("strategy")]}>
          <AutoComplete aria-label="Strategy" options={strategies.map((s) => ({ value: s }))} placeholder="MACD" />
        </Form.Item>
      </div>
      <Form.Item label="Note (optional)" name="note" rules={[rule("note")]}>
        <Input.TextArea rows={1} autoSize={{ minRows: 1, maxRows: 4 }} aria-label="Note" />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={sending} block data-testid="log-order">
        Log paper trade
      </Button>
    </Form>
  );
}
