import Distributed
import Testing

@Suite struct ChunksTests {
    @Test func displacementsDefaultToTheRunningSum() {
        let chunks = Chunks(counts: [3, 0, 2, 5])
        #expect(chunks.displacements == [0, 3, 3, 5])
        #expect(chunks.extent == 10)
        #expect(chunks[2] == 3..<5)
        #expect(chunks[1].isEmpty)
    }

    @Test func explicitDisplacementsMayLeaveGaps() {
        let chunks = Chunks(counts: [2, 2], displacements: [4, 0])
        #expect(chunks.extent == 6)
        #expect(chunks[0] == 4..<6)
    }

    @Test func trafficReportsAddAndSubtractCounterWise() {
        var a = TrafficReport()
        a[.alltoallv] = TrafficCounters(calls: 2, bytesSent: 100, bytesReceived: 40)
        var b = TrafficReport()
        b[.alltoallv] = TrafficCounters(calls: 1, bytesSent: 10, bytesReceived: 4)
        b[.allreduce] = TrafficCounters(calls: 3, bytesSent: 24, bytesReceived: 24)
        let sum = a + b
        #expect(sum[.alltoallv] == TrafficCounters(calls: 3, bytesSent: 110, bytesReceived: 44))
        #expect(sum.total == TrafficCounters(calls: 6, bytesSent: 134, bytesReceived: 68))
        #expect((sum - b) == a)
    }

    @Test func mpiErrorsReadLikeMPIs() {
        let error = MPIError(call: "MPI_Allreduce", code: 2, errorClass: 2, message: "MPI_ERR_COUNT: invalid count argument")
        #expect(error.description == "MPI_Allreduce failed: MPI_ERR_COUNT: invalid count argument (class 2, code 2)")
    }
}
