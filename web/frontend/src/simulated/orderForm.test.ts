import { describe, expect, it } from "vitest";
import { newClientOrderId, orderRequest, validateOrder } from "./orderForm";

describe("the paper-trade form", () => {
  it("accepts a complete order", () => {
    expect(validateOrder({ symbol: "brk.b", side: "SELL", quantity: 0.5, price: 10, commission: 0 })).toEqual({});
  });

  it("names every missing or bad field", () => {
    expect(validateOrder({ symbol: "", quantity: null, price: -1, commission: -2 })).toEqual({
      symbol: "enter a ticker",
      side: "BUY or SELL",
      quantity: "enter the shares",
      price: "must be greater than 0",
      commission: "must be 0 or more",
    });
    expect(validateOrder({ symbol: "A/B", side: "BUY", quantity: 0, price: 1 }).symbol).toMatch(/letters, digits/);
    expect(validateOrder({ symbol: "A", side: "BUY", quantity: 0, price: 1 }).quantity).toBe("must be greater than 0");
  });

  it("builds the request with its client order id", () => {
    expect(orderRequest({ symbol: " aapl ", side: "BUY", quantity: 100, price: 310.5, strategy: " MACD " }, "web-1")).toEqual({
      symbol: "AAPL", side: "BUY", quantity: 100, price: 310.5, commission: 0, strategy: "MACD", note: "", client_order_id: "web-1",
    });
  });

  it("makes a new id each time, short enough for the API", () => {
    const ids = new Set(Array.from({ length: 50 }, newClientOrderId));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(64);
  });
});
