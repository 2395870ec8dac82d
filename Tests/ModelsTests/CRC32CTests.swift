import Foundation
import Models
import Testing

@Suite struct CRC32CTests {
    @Test func matchesTheCastagnoliCheckValueInOnePassOrTwo() {
        #expect(CRC32C.checksum(Data("123456789".utf8)) == 0xE306_9283)
        let bytes = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let whole = CRC32C.checksum(bytes)
        let continued = bytes.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[333...]), continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<333])))
        }
        #expect(whole == continued)
    }
}
