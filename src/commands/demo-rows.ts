/** Jobs `budget-cdc demo` loads unless --rows says otherwise (kept apart so --help need not load the demo). */
export const DEFAULT_DEMO_ROWS = 100_000;
