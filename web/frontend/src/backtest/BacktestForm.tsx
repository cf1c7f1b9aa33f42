import { Alert, Button, DatePicker, Form, Input, InputNumber, Select, Space, Switch, Typography } from "antd";
import dayjs, { type Dayjs } from "dayjs";
import { useEffect, useMemo, useRef, useState } from "react";
import { ApiError } from "../api/client";
import type { BacktestRequest, BacktestRun, Strategy, StrategyParameter } from "../api/types";
import {
  COMMON_TIMEFRAMES,
  backtestRequest,
  boundsText,
  defaultValues,
  normalizeSymbols,
  parameterError,
  serverFieldErrors,
  symbolsError,
  timeframeError,
  valuesFromRun,
  type BacktestFormValues,
} from "./validation";

/** The form's own shape of the values: the dates as one range of dayjs values. */
function formShape(values: BacktestFormValues): FormShape {
  const { start, end, ...rest } = values;
  return { ...rest, range: start || end ? [start ? dayjs(start) : null, end ? dayjs(end) : null] : null };
}

interface FormShape extends Omit<BacktestFormValues, "start" | "end"> {
  range?: [Dayjs | null, Dayjs | null] | null;
}

const FIELDS = ["strategy", "symbols", "timeframe", "start", "end", "initial_capital", "commission", "slippage", "write_cache"];

/** The input of one parameter; Form.Item hands it `id`, `value` and `onChange`. */
function ParameterInput({ parameter, ...field }: { parameter: StrategyParameter; id?: string; value?: unknown; onChange?: (value: unknown) => void }) {
  const props = { ...field, "aria-label": parameter.name } as Record<string, unknown>;
  if (parameter.choices.length) {
    return <Select {...props} options={parameter.choices.map((c) => ({ value: c, label: c }))} />;
  }
  if (parameter.type === "string") return <Input {...props} />;
  // No min/max here: the rule says what is wrong instead of the input silently clamping.
  return (
    <InputNumber
      {...props}
      style={{ width: "100%" }}
      step={parameter.type === "integer" ? 1 : 0.1}
      precision={parameter.type === "integer" ? 0 : undefined}
    />
  );
}

export interface BacktestFormProps {
  strategies: Strategy[];
  running: boolean;
  /** The last run's failure: its field errors go next to their fields. */
  error: ApiError | null;
  onRun: (request: BacktestRequest) => void;
  /** A run whose settings the form takes (a re-opened past run). */
  preset?: BacktestRun | null;
}

/** Strategy, its parameters (defaults, bounds, help), symbols, timeframe, dates, money and
 * the cache switch; checked here first, then by the server. */
export function BacktestForm({ strategies, running, error, onRun, preset = null }: BacktestFormProps) {
  const [form] = Form.useForm<FormShape>();
  const [name, setName] = useState(strategies[0]?.name);
  const strategy = useMemo(() => strategies.find((s) => s.name === name), [strategies, name]);
  const [general, setGeneral] = useState<string[]>([]);
  // A preset waiting for its strategy's parameters to be on the form.
  const pending = useRef<BacktestRun | null>(null);

  useEffect(() => {
    if (!strategy) return;
    const run = pending.current;
    pending.current = null;
    form.setFieldsValue(formShape(run && run.strategy === strategy.name ? valuesFromRun(run, strategy) : defaultValues(strategy)));
  }, [strategy, form]);

  useEffect(() => {
    const target = preset && strategies.find((s) => s.name === preset.strategy);
    if (!preset || !target) return;
    if (target.name === name) {
      form.setFieldsValue(formShape(valuesFromRun(preset, target)));
    } else {
      pending.current = preset;
      setName(target.name);
    }
    // Only a new preset resets the form, not a change of strategy by the user.
  }, [preset?.id, strategies, form]);

  useEffect(() => {
    if (!error || error.status !== 400) {
      setGeneral([]);
      return;
    }
    const { byField, general: rest } = serverFieldErrors(error.fields, FIELDS);
    form.setFields(
      byField.map(({ name: path, errors }) => ({
        name: path[0] === "start" || path[0] === "end" ? ["range"] : (path as never),
        errors,
      })),
    );
    setGeneral(rest.length || byField.length ? rest : [error.message]);
  }, [error, form]);

  const submit = (values: FormShape) => {
    if (!strategy) return;
    const [start, end] = values.range ?? [null, null];
    const full: BacktestFormValues = {
      ...values,
      params: values.params ?? {},
      start: start ? start.format("YYYY-MM-DD") : null,
      end: end ? end.format("YYYY-MM-DD") : null,
    };
    onRun(backtestRequest(full, strategy));
  };

  const timeframes = strategy?.timeframes ?? COMMON_TIMEFRAMES;
  return (
    <Form form={form} layout="vertical" onFinish={submit} requiredMark={false} size="middle" aria-label="Backtest settings">
      {general.length > 0 && <Alert type="error" showIcon title={general.join("; ")} style={{ marginBottom: 12 }} />}
      <Form.Item label="Strategy" name="strategy" extra={strategy?.description} rules={[{ required: true, message: "pick a strategy" }]}>
        <Select
          aria-label="Strategy"
          options={strategies.map((s) => ({ value: s.name, label: s.name }))}
          onChange={(value: string) => setName(value)}
        />
      </Form.Item>
      {strategy && strategy.parameters.length > 0 && (
        <fieldset className="param-grid" aria-label="Strategy parameters">
          {strategy.parameters.map((parameter) => (
            <Form.Item
              key={`${strategy.name}.${parameter.name}`}
              label={parameter.name}
              name={["params", parameter.name]}
              tooltip={parameter.help}
              extra={[parameter.help, boundsText(parameter) && `(${boundsText(parameter)}; default ${parameter.default})`].filter(Boolean).join(" ")}
              rules={[{ validator: (_, value) => {
                const problem = parameterError(parameter, value);
                return problem ? Promise.reject(new Error(problem)) : Promise.resolve();
              } }]}
            >
              <ParameterInput parameter={parameter} />
            </Form.Item>
          ))}
        </fieldset>
      )}
      <Form.Item
        label="Symbols"
        name="symbols"
        extra="The strategy's defaults; type any other ticker and press Enter."
        normalize={(value: string[]) => normalizeSymbols(value ?? [])}
        rules={[{ validator: (_, value) => {
          const problem = symbolsError(value);
          return problem ? Promise.reject(new Error(problem)) : Promise.resolve();
        } }]}
      >
        <Select
          mode="tags"
          aria-label="Symbols"
          tokenSeparators={[",", " "]}
          options={(strategy?.default_symbols ?? []).map((s) => ({ value: s, label: s }))}
          placeholder="AAPL, MSFT, ..."
        />
      </Form.Item>
      <Space.Compact block>
        <Form.Item
          label="Timeframe"
          name="timeframe"
          style={{ flex: "0 0 35%" }}
          rules={[{ validator: (_, value) => {
            const problem = timeframeError(value, strategy);
            return problem ? Promise.reject(new Error(problem)) : Promise.resolve();
          } }]}
        >
          <Select aria-label="Timeframe" options={timeframes.map((t) => ({ value: t, label: t }))} />
        </Form.Item>
        <Form.Item label="Date range (optional)" name="range" style={{ flex: 1 }} extra="New York dates; empty: all data">
          <DatePicker.RangePicker allowEmpty={[true, true]} style={{ width: "100%" }} />
        </Form.Item>
      </Space.Compact>
      <div className="money-grid">
        <Form.Item label="Initial capital ($ per symbol)" name="initial_capital" rules={[{ validator: (_, v) => (v > 0 ? Promise.resolve() : Promise.reject(new Error("must be greater than 0"))) }]}>
          <InputNumber style={{ width: "100%" }} step={1000} />
        </Form.Item>
        <Form.Item label="Commission ($/share)" name="commission" rules={[{ validator: (_, v) => (v >= 0 ? Promise.resolve() : Promise.reject(new Error("must be 0 or more"))) }]}>
          <InputNumber style={{ width: "100%" }} step={0.001} />
        </Form.Item>
        <Form.Item label="Slippage ($/share)" name="slippage" rules={[{ validator: (_, v) => (v >= 0 ? Promise.resolve() : Promise.reject(new Error("must be 0 or more"))) }]}>
          <InputNumber style={{ width: "100%" }} step={0.01} />
        </Form.Item>
      </div>
      <Form.Item name="write_cache" valuePropName="checked" label="Write chart cache" extra="backtest_results/<timeframe>/<SYMBOL>_backtest.json, which the chart reads">
        <Switch aria-label="Write chart cache" />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={running} block size="large" data-testid="run-backtest">
        {running ? "Running backtest…" : "Run backtest"}
      </Button>
      {running && <Typography.Text type="secondary">The engine runs on the server; a few seconds per symbol-year.</Typography.Text>}
    </Form>
  );
}
