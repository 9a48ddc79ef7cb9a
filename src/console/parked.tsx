/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// PARKED WORK (to be wired by the lead once `GET /admin/parked` and `POST /admin/parked/retry` of
// src/webhook/drain.ts are merged): the overview's list of parked work with a "Retry" form per
// item (and one for all), posting to /console/actions/retry-parked with the CSRF field. Until then
// this section says where the list will be, so the page's layout does not change when it comes.
export function ParkedWork() {
  return (
    <div class="placeholder" id="parked-work">
      Parked work will be listed here, with a Retry action for each item.
    </div>
  );
}
