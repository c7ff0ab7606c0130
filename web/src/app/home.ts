import type { Role } from '../api/types';

/** Where a user lands after sign-in: the first section their roles give them. */
export function homeFor(roles: readonly Role[]): string {
  if (roles.includes('MANAGER')) return '/manager';
  if (roles.includes('LINE_LEADER')) return '/tasks';
  if (roles.includes('ADMIN')) return '/admin/users';
  return '/account';
}
