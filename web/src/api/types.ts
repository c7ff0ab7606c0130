// Named aliases for the generated OpenAPI schema (src/api/schema.d.ts, `npm run gen:api`).
// Only these aliases are imported by the screens, so a server change surfaces as a type error.
import type { components } from './schema';

type S = components['schemas'];

export type User = S['UserView'];
export type AdminUser = S['AdminUserView'];
export type UserPage = S['UserPage'];
export type AuditEntry = S['AuditEntry'];
export type AuditPage = S['AuditPage'];
export type FailedMail = S['FailedMail'];
export type FailedPage = S['FailedPage'];
export type Role = S['Role'];
export type Line = S['Line'];
export type Leader = S['Leader'];
export type Shift = S['Shift'];
export type LinePatch = S['LinePatch'];
export type ProductPatch = S['ProductPatch'];
export type Product = S['Product'];
export type Reason = S['Reason'];
export type Order = S['Order'];
export type OrderPage = S['OrderPage'];
export type WorkOrder = S['WorkOrder'];
export type FactorySummary = S['FactorySummary'];
export type LineKpi = S['LineKpi'];
export type Oee = S['Oee'];
export type ParetoEntry = S['ParetoEntry'];
export type Alert = S['Alert'];
export type Rule = S['Rule'];
export type DocumentMeta = S['Document'];
export type OidcConfig = S['PublicConfig'];
export type Published = S['Published'];
export type HistoryEntry = S['HistoryEntry'];
