import Dashboard from './Dashboard';
import Schedule from './Schedule';
import { AlertRules, Documents, Lines, Orders, Products, Reasons } from './Lists';

export default function ManagerArea(props: { path: string }) {
  switch (props.path) {
    case '/manager':
      return <Dashboard />;
    case '/manager/schedule':
      return <Schedule />;
    case '/manager/orders':
      return <Orders />;
    case '/manager/lines':
      return <Lines />;
    case '/manager/products':
      return <Products />;
    case '/manager/documents':
      return <Documents />;
    case '/manager/reasons':
      return <Reasons />;
    case '/manager/alert-rules':
      return <AlertRules />;
    default:
      return <p className="empty">Page not found.</p>;
  }
}
