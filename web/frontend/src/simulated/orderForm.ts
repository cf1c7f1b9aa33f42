// The paper-trade form's rules and request, as pure functions.

import type { NewSimulatedOrder } from "../api/types";

export const SYMBOL = /^[A-Z0-9][A-Z0-9.-]{0,14}$/;

export interface OrderFormValues {
  symbol?: string;
  side?: "BUY" | "SELL";
  quantity?: number | null;
  price?: number | null;
  commission?: number | null;
  strategy?: string;
  note?: string;
}

/** Every field's problem, empty when the order can be sent. */
export function validateOrder(values: OrderFormValues): Partial<Record<keyof OrderFormValues, string>> {
  const errors: Partial<Record<keyof OrderFormValues, string>> = {};
  const symbol = (values.symbol ?? "").trim().toUpperCase();
  if (!symbol) errors.symbol = "enter a ticker";
  else if (!SYMBOL.test(symbol)) errors.symbol = "1-15 letters, digits, '.' or '-' (e.g. AAPL, BRK.B)";
  if (values.side !== "BUY" && values.side !== "SELL") errors.side = "BUY or SELL";
  if (values.quantity === null || values.quantity === undefined) errors.quantity = "enter the shares";
  else if (!(values.quantity > 0)) errors.quantity = "must be greater than 0";
  if (values.price === null || values.price === undefined) errors.price = "enter the fill price";
  else if (!(values.price > 0)) errors.price = "must be greater than 0";
  if (values.commission !== null && values.commission !== undefined && !(values.commission >= 0)) {
    errors.commission = "must be 0 or more";
  }
  if ((values.strategy ?? "").length > 100) errors.strategy = "at most 100 characters";
  if ((values.note ?? "").length > 2000) errors.note = "at most 2000 characters";
  return errors;
}

/** A fresh id for one order: a second post of it returns the stored fill instead of
 * storing another (crypto.randomUUID is missing on plain-http origins other than localhost). */
export function newClientOrderId(): string {
  const random =
    typeof crypto !== "undefined" && typeof crypto.randomUUID === "function"
      ? crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  return `web-${random}`;
}

export function orderRequest(values: OrderFormValues, clientOrderId: string): NewSimulatedOrder {
  return {
    symbol: (values.symbol ?? "").trim().toUpperCase(),
    side: values.side ?? "BUY",
    quantity: Number(values.quantity),
    price: Number(values.price),
    commission: values.commission ?? 0,
    strategy: (values.strategy ?? "").trim(),
    note: values.note ?? "",
    client_order_id: clientOrderId,
  };
}
