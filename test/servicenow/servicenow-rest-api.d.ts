// Types of servicenow-rest-api (it ships none): the callback API the fidelity test calls.
declare module 'servicenow-rest-api' {
  type Callback = (value: never) => void;
  export default class ServiceNow {
    constructor(instance: string, userid: string, password: string);
    setNetworkOptions(options: Record<string, unknown>): void;
    getSampleData(type: string, callback: Callback): void;
    getTableData(fields: string[], filters: string[], type: string, callback: Callback): void;
    createNewTask(data: Record<string, unknown>, type: string, callback: Callback): void;
    getSysId(type: string, number: string, callback: Callback): void;
    UpdateTask(
      type: string,
      number: string,
      data: Record<string, unknown>,
      callback: Callback,
    ): void;
    DeleteTask(type: string, number: string, callback: Callback): void;
  }
}
