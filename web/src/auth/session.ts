// The app-wide authService instance and a React hook onto its state.
import { useSyncExternalStore } from 'react';
import { browserAuthService, type AuthState } from './authService';

export const auth = browserAuthService();

export function useAuth(): AuthState {
  return useSyncExternalStore(auth.subscribe, auth.getState);
}
